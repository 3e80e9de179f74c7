"""Phenomenon modules; importing this package registers every phenomenon (one line each)."""

from phenomon.phenomena import grokking  # noqa: F401
