"""Phenomenon modules; importing this package registers every phenomenon (one line each)."""

from phenomon.phenomena import double_descent  # noqa: F401
from phenomon.phenomena import emergence  # noqa: F401
from phenomon.phenomena import grokking  # noqa: F401
from phenomon.phenomena import lottery_ticket  # noqa: F401
