"""phenomon test suite."""
