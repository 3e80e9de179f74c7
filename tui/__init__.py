"""The live monitor: a Textual app over the run store (see `phenomon.tui.app.PhenomonApp`)."""
