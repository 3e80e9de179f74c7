"""Phenomenon modules; importing this package registers every phenomenon (one line each)."""

from phenomon.phenomena import double_descent  # noqa: F401
from phenomon.phenomena import emergence  # noqa: F401
from phenomon.phenomena import grokking  # noqa: F401
from phenomon.phenomena import lottery_ticket  # noqa: F401
from phenomon.phenomena import grokking_data  # noqa: F401
from phenomon.phenomena import omnigrok  # noqa: F401
from phenomon.phenomena import tickets_at_init  # noqa: F401
from phenomon.phenomena import dd_regularised  # noqa: F401
from phenomon.phenomena import edge_of_stability  # noqa: F401
