"""Widgets of the monitor: the braille line chart, its axes, the toggles bar."""
