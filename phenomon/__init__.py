"""phenomon: a terminal laboratory for deep-learning phenomena and the explanations offered for them."""

__version__ = "0.1.0"
