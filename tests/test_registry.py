"""Registry and configuration: names are the API, ablations are diffs, bad values are one-line errors."""

from __future__ import annotations

import pytest

from phenomon import registry
from phenomon.config import UsageError

from .conftest import PHENOMENON_NAMES


def test_unknown_phenomenon_lists_valid_names():
    with pytest.raises(UsageError, match=rf"unknown phenomenon 'grok'; valid: {PHENOMENON_NAMES}$"):
        registry.get("grok")


def test_unknown_toggle_and_key_list_valid_ones():
    ph = registry.get("grokking")
    with pytest.raises(UsageError, match=r"unknown toggle 'wd'.*valid: weight_decay, train_fraction, init_scale$"):
        ph.resolve(toggles=["wd"])
    with pytest.raises(UsageError, match=r"unknown key 'lrate'; valid keys: model, p, op, train_fraction, lr, "
                                         r"weight_decay, beta1, beta2, init_scale, d_embed, hidden, d_model, n_heads, "
                                         r"d_mlp, max_steps, eval_every, seed$"):
        ph.resolve(sets=["lrate=1"])
    with pytest.raises(UsageError, match=r"unknown preset 'fast'.*valid: transformer, nanda$"):
        ph.resolve(preset="fast")


@pytest.mark.parametrize("pair, message", [
    ("p=91", "p must be a prime ≥ 3"),
    ("p=abc", "expected an integer"),
    ("p=9.5", "expected an integer"),
    ("train_fraction=1.0", r"train_fraction must be in \(0, 1\)"),
    ("train_fraction=0", r"train_fraction must be in \(0, 1\)"),
    ("weight_decay=-1", "weight_decay must be >= 0"),
    ("lr=0", "lr must be positive"),
    ("model=cnn", "not one of: mlp, transformer"),
    ("op=%", r"not one of: \+, -, \*, /"),
    ("max_steps=0", "max_steps must be a positive integer"),
    ("nokey", "expects key=value"),
])
def test_bad_values_are_rejected(pair, message):
    with pytest.raises(UsageError, match=message):
        registry.get("grokking").resolve(sets=[pair])


def test_toggle_is_a_diff_of_the_defaults_and_keeps_the_group():
    ph = registry.get("grokking")
    base = ph.resolve()
    ablated = ph.resolve(toggles=["weight_decay"])
    assert ablated.weight_decay == 0.0 and base.weight_decay == 1.0
    assert ph.toggles_on(ablated) == ["weight_decay"] and ph.toggles_on(base) == []
    assert ph.group_of(base) == ph.group_of(ablated) == ph.group_of(ph.resolve(sets=["seed=3"]))
    assert ph.group_of(ph.resolve(sets=["p=113"])) != ph.group_of(base)


def test_presets_and_typed_overrides():
    ph = registry.get("grokking")
    cfg = ph.resolve(preset="nanda", sets=["lr=2e-3", "op=/"])
    assert (cfg.model, cfg.p, cfg.train_fraction, cfg.lr, cfg.op) == ("transformer", 113, 0.3, 2e-3, "/")


def test_toggle_keys_never_clash_with_the_monitor_or_each_other():
    for name in registry.names():
        registry.check_toggle_keys(registry.get(name))  # raises with the clashing keys
    bad = registry.Phenomenon("bad", "", registry.get("grokking").config_cls,
                              (registry.Toggle("a", "q", {}, ""), registry.Toggle("b", "w", {}, ""),
                               registry.Toggle("c", "w", {}, "")),
                              criterion=lambda f, c: None, execute=lambda c, x: None)
    with pytest.raises(ValueError, match=r"toggle keys \['q', 'w'\]"):
        registry.check_toggle_keys(bad)


def test_register_refuses_a_toggle_key_the_monitor_binds():
    bad = registry.Phenomenon("bad", "", registry.get("grokking").config_cls, (registry.Toggle("a", "S", {}, ""),),
                              criterion=lambda f, c: None, execute=lambda c, x: None)
    with pytest.raises(ValueError, match=r"toggle keys \['S'\]"):
        registry.register(bad)
    assert "bad" not in registry.names()


def test_reserved_keys_are_exactly_the_monitors_bindings():
    """RESERVED_KEYS is a copy (the registry imports no textual): it must equal every key bound by the app and by
    every screen, so a toggle can neither shadow a monitor key nor be refused for a key nothing binds."""
    import importlib
    import inspect
    import pkgutil

    from textual.binding import BindingsMap
    from textual.keys import _character_to_key
    from textual.screen import Screen

    import phenomon.tui.screens
    from phenomon.tui.app import PhenomonApp

    owners = [PhenomonApp]
    for m in pkgutil.iter_modules(phenomon.tui.screens.__path__, "phenomon.tui.screens."):
        mod = importlib.import_module(m.name)
        owners += [c for _, c in inspect.getmembers(mod, inspect.isclass)
                   if issubclass(c, Screen) and c.__module__ == mod.__name__ and "BINDINGS" in vars(c)]
    assert {c.__name__ for c in owners} >= {"PhenomonApp", "RunsScreen", "CompareScreen", "ScorecardScreen"}
    bound = {k for c in owners for k in BindingsMap(c.BINDINGS).key_to_bindings}
    reserved = {_character_to_key(k) if len(k) == 1 else k for k in registry.RESERVED_KEYS}
    assert reserved == bound, f"only reserved: {sorted(reserved - bound)}; only bound: {sorted(bound - reserved)}"
