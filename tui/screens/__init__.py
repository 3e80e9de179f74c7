"""Screens of the monitor, one per file."""
