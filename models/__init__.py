"""LightningModules and the networks they train, one file per model family."""
