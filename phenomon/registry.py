"""The phenomenon registry: names are the API; `get(name)` fails with the valid names.

A phenomenon bundles typed default hyperparameters, named presets, toggles (each a diff of the defaults, with what
the literature expects it to do), how to build and run it, and a criterion that turns frames into a verdict.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

import polars as pl

from phenomon.store.axis import Axis, ConfigField, Step

from phenomon.config import UsageError, config_hash, diff, fields_of, parse_overrides, to_dict


@dataclass(frozen=True)
class Toggle:
    """A named ablation: `changes` applied to the baseline with `dataclasses.replace`."""

    name: str
    key: str  # the TUI key that flips it
    changes: dict[str, Any]
    expect: str  # one line: what the literature says it does

    def apply(self, cfg):
        return dataclasses.replace(cfg, **self.changes)

    def is_on(self, cfg) -> bool:
        d = to_dict(cfg)
        return all(d.get(k) == (list(v) if isinstance(v, tuple) else v) for k, v in self.changes.items())


@dataclass(frozen=True)
class Verdict:
    """What the criterion concluded: `effect` is True when the phenomenon showed, None when undecidable."""

    effect: bool | None
    line: str
    numbers: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Phenomenon:
    name: str
    summary: str
    config_cls: type
    toggles: tuple[Toggle, ...]
    criterion: Callable[[pl.DataFrame, Any], Verdict]  # (wide frame of one run, config) -> verdict
    execute: Callable[..., None]  # (config, phenomon.session.Session) -> None; trains, the logger streams rows
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    headline: tuple[str, ...] = ()  # metric names shown in `ls` and the progress bar
    notes: str = ""
    # What the compare panel plots and the scorecard scores against (phenomon.store.axis): Step(),
    # ConfigField("width") (one point per run of the group) or RoundMetric("weights_remaining") (one per round)
    x_axis: Axis = Step()
    # Several runs judged together (`phenomon experiment NAME`, `show`): the default experiment's variants as
    # label -> toggles, run for each of `seeds`, and a criterion over the group's runs
    # ((wide rows of all of them with `run`, `toggles` (sorted, comma-joined) and `seed` columns, config) -> verdict).
    experiment: dict[str, tuple[str, ...]] = field(default_factory=dict)
    seeds: tuple[int, ...] = (0, 1, 2)
    group_criterion: Callable[[pl.DataFrame, Any], Verdict] | None = None
    outcome: str = "test/acc"  # the test metric explanations are scored against
    outcome_moves: float = 0.1  # the scorecard judges tracking where the outcome's largest mean shift reaches this
    # A sweep over the x_axis "config:<field>": a config that leaves <field> at 0 stands for one run per value of
    # `sweep(cfg)`; `phenomon run` and `phenomon experiment` then start those runs, all in one comparison group.
    sweep: Callable[[Any], tuple] | None = None
    # A sweep run's relative cost from its value (e.g. a width's parameter count): the launcher starts the costliest
    # first, so the last run to finish is not the largest one started last. None: the runs start in the given order.
    sweep_cost: Callable[[Any], float] | None = None
    # The claim (from the position paper's table and its sources) an experiment checks: the report's figure caption
    claim: str = ""
    # (metric, legend) pairs the report's outcome figure draws against a sweep field in place of test/train error
    figure_series: tuple[tuple[str, str], ...] = ()
    # Figures of its own in `phenomon report`: (its runs, the output folder, matplotlib.pyplot) -> the files written;
    # on a sweep they stand in for the generic outcome figure against the sweep field
    figures: Callable[[list, Any, Any], list] | None = None

    def defaults(self):
        return self.config_cls()

    def sweep_field(self) -> str | None:
        return self.x_axis.name if isinstance(self.x_axis, ConfigField) else None

    def sweep_values(self, cfg) -> tuple:
        """The values a run of `cfg` stands for (its sweep field left at 0); () when it is a single run."""
        f = self.sweep_field()
        if self.sweep is None or f is None or getattr(cfg, f):
            return ()
        return tuple(self.sweep(cfg))

    def toggle(self, name: str) -> Toggle:
        for t in self.toggles:
            if t.name == name:
                return t
        raise UsageError(f"unknown toggle {name!r} for {self.name}; valid: {', '.join(t.name for t in self.toggles)}")

    def resolve(self, preset: str | None = None, sets: list[str] = (), toggles: list[str] = ()):
        """Defaults, then a preset, then `--set` overrides, then toggles; validated."""
        cfg = self.defaults()
        if preset:
            if preset not in self.presets:
                raise UsageError(f"unknown preset {preset!r} for {self.name}; valid: {', '.join(self.presets) or 'none'}")
            cfg = dataclasses.replace(cfg, **self.presets[preset])
        overrides = parse_overrides(self.config_cls, list(sets))
        cfg = dataclasses.replace(cfg, **overrides)
        for name in toggles:
            cfg = self.toggle(name).apply(cfg)
        validate = getattr(cfg, "validate", None)
        if validate is not None:
            try:
                validate()
            except ValueError as e:
                raise UsageError(f"{self.name}: {e}") from None
        return cfg

    def baseline_of(self, cfg):
        """`cfg` with every toggled field put back to its baseline value: the comparison group's anchor."""
        base = self.defaults()
        back = {}
        for t in self.toggles:
            for k in t.changes:
                back[k] = getattr(base, k)
        return dataclasses.replace(cfg, **back)

    def toggles_on(self, cfg) -> list[str]:
        return [t.name for t in self.toggles if t.is_on(cfg) and not t.is_on(self.defaults())]

    def group_of(self, cfg) -> str:
        """Runs that differ only in toggles, seed and the sweep field compare against each other."""
        anchor = to_dict(self.baseline_of(cfg))
        anchor.pop("seed", None)
        if self.sweep_field():
            anchor.pop(self.sweep_field(), None)
        return f"{self.name}-{config_hash(anchor, 6)}"

    def keys(self) -> list[str]:
        return list(fields_of(self.config_cls))


_REGISTRY: dict[str, Phenomenon] = {}

# Keys the monitor binds itself (the app and every screen): a toggle may not take one of them. The registry may not
# import textual, so this is a copy; tests/test_registry.py checks it equals every BINDINGS key of the app and screens.
RESERVED_KEYS = frozenset("q?snkvSrcptxlga[]/+-X.,hHO") | {"space", "enter", "escape", "left", "right", "shift+left",
                                                  "shift+right", "ctrl+c", "ctrl+s", "ctrl+r", "y", "G", "up", "down"}


def check_toggle_keys(ph: "Phenomenon") -> None:
    keys = [t.key for t in ph.toggles]
    clash = sorted({k for k in keys if k in RESERVED_KEYS})
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if clash or dupes:
        raise ValueError(f"{ph.name}: toggle keys {clash + dupes} are taken by the monitor or repeated; "
                         f"reserved: {' '.join(sorted(RESERVED_KEYS))}")


def register(ph: Phenomenon) -> Phenomenon:
    check_toggle_keys(ph)  # a clash would silently shadow a toggle in the monitor: fail at import instead
    _REGISTRY[ph.name] = ph
    return ph


def _load() -> None:
    # one import per phenomenon module; each calls register()
    import phenomon.phenomena  # noqa: F401


def names() -> list[str]:
    _load()
    return sorted(_REGISTRY)


def get(name: str) -> Phenomenon:
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UsageError(f"unknown phenomenon {name!r}; valid: {', '.join(sorted(_REGISTRY))}") from None


def run_config_diff(ph: Phenomenon, cfg) -> dict[str, Any]:
    return diff(ph.defaults(), cfg)
