"""LightningDataModules, each generated from a procedure and a seed (nothing is downloaded)."""
