"""What a phenomenon's curves are plotted and scored against: a typed x axis instead of a mini-language string.

`Step()`             metrics over training steps (a log axis in the monitor);
`ConfigField(name)`  one point per run of a comparison group, at its final metrics (a sweep: `width`);
`RoundMetric(name)`  one point per round of a run, at that round's final metrics (`weights_remaining`).

Manifests and old code spoke the strings `"step"`, `"config:<field>"`, `"metric:<name>"`: `parse` reads them and
`str(axis)` writes them, so nothing stored changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True)
class Step:
    label: str = "step"
    per_run: bool = True  # every run is a curve of its own

    def __str__(self) -> str:
        return "step"


@dataclass(frozen=True)
class ConfigField:
    name: str
    per_run: bool = False  # a run is one point; the group's runs make the curve

    @property
    def label(self) -> str:
        return self.name

    def __str__(self) -> str:
        return f"config:{self.name}"


@dataclass(frozen=True)
class RoundMetric:
    name: str
    per_run: bool = True  # a run's rounds make its curve

    @property
    def label(self) -> str:
        return self.name

    def __str__(self) -> str:
        return f"metric:{self.name}"


Axis = Union[Step, ConfigField, RoundMetric]


def parse(text: "str | Axis") -> Axis:
    """An axis from its string form (or the axis itself); ValueError names the valid forms."""
    if isinstance(text, (Step, ConfigField, RoundMetric)):
        return text
    kind, sep, name = str(text).partition(":")
    if kind == "step" and not sep:
        return Step()
    if kind == "config" and name:
        return ConfigField(name)
    if kind == "metric" and name:
        return RoundMetric(name)
    raise ValueError(f"unknown x axis {text!r}; valid: step, config:<field>, metric:<name>")
