"""The live monitor: a Textual app over the run store (see `tui.app.PhenomonApp`)."""
