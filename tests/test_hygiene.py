"""The dependency direction, over every module of the package: training code never imports the monitor, the monitor
never imports torch, and the store and the catalog import neither."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
import tomllib

from .conftest import REPO

TORCH = ("torch", "pytorch_lightning", "lightning")
TUI = ("textual", "phenomon.tui")
# Imports each group's modules one at a time and names, for each forbidden package, the first module that brought it
# in: earlier groups may only load what later groups also allow, so one interpreter serves several groups.
PROBE = """
import importlib, json, sys
def present(names):
    return [n for n in names if any(m == n or m.startswith(n + ".") for m in sys.modules)]
out = []
for modules, forbidden in json.loads(sys.argv[1]):
    culprits = {}
    for m in modules:
        importlib.import_module(m)
        for n in present(forbidden):
            culprits.setdefault(n, m)
    out.append(culprits)
print(json.dumps(out))
"""


def every_module() -> list[str]:
    """Every module of the package, `__main__` excepted. The folders mapped into it (tui/ as phenomon.tui, ...) are
    not below phenomon/ in an editable install, so the walk starts at each package pyproject.toml installs."""
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    found = set(packages)
    for p in packages:
        found |= {m.name for m in pkgutil.walk_packages(importlib.import_module(p).__path__, f"{p}.")}
    return sorted(n for n in found if n.rsplit(".", 1)[-1] != "__main__")


def under(modules: list[str], *prefixes: str) -> list[str]:
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes)]


def _culprits(*groups: tuple[list[str], tuple[str, ...]]) -> list[dict[str, str]]:
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(groups)], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_the_walk_finds_every_layer():
    mods = every_module()
    for m in ("phenomon.tui.app", "phenomon.tui.screens.compare", "phenomon.tui.widgets.chart", "phenomon.models.lottery",
              "phenomon.datamodules.mnist1d", "phenomon.callbacks.signals", "phenomon.store.axis", "phenomon.catalog",
              "phenomon.phenomena.grokking"):
        assert m in mods, m


def test_store_catalog_and_monitor_never_import_torch():
    """One interpreter: the store and the catalog first (no torch, textual or Lightning), then every module of the
    monitor, the registry and the CLI (no torch or Lightning)."""
    mods = every_module()
    bottom = under(mods, "phenomon.store", "phenomon.catalog")
    monitor = under(mods, "phenomon.tui") + ["phenomon.registry", "phenomon.cli", "phenomon.launcher"]
    assert bottom and len(monitor) > 10
    store_side, monitor_side = _culprits((bottom, TORCH + TUI), (monitor, TORCH))
    assert {"store and catalog": store_side, "monitor": monitor_side} == {"store and catalog": {}, "monitor": {}}


def test_nothing_outside_the_monitor_imports_it():
    """Models, data modules, callbacks, phenomena, runner, scorecard, ...: no textual, no phenomon.tui (the CLI starts
    the monitor from inside `phenomon tui` only)."""
    mods = every_module()
    rest = [m for m in mods if m not in under(mods, "phenomon.tui")]
    assert set(under(mods, "phenomon.models", "phenomon.datamodules", "phenomon.callbacks")) < set(rest)
    [culprits] = _culprits((rest, TUI))
    assert culprits == {}, f"imports the monitor: {culprits}"


RESOLVE_ALL = """
import sys
from phenomon import registry
for name in registry.names():
    ph = registry.get(name)
    ph.resolve()
    for preset in ph.presets:
        ph.resolve(preset)
    for t in ph.toggles:
        ph.resolve(toggles=[t.name])
    ph.group_of(ph.resolve())
print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "pytorch_lightning", "lightning")))
"""


def test_validating_a_launch_never_imports_torch():
    """The monitor resolves (validates) a config on the UI thread before it launches: that must not pull in torch
    (seconds and hundreds of MiB on the UI thread)."""
    out = subprocess.run([sys.executable, "-c", RESOLVE_ALL], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_every_package_folder_is_installed():
    """The package list in pyproject.toml is explicit (the folders are mapped into phenomon.*): a new sub-package
    that is not listed would work in a checkout and vanish from a wheel."""
    conf = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed, mapping = set(conf["packages"]), conf["package-dir"]
    found = set()
    for pkg, folder in mapping.items():
        root = REPO / folder
        for init in root.rglob("__init__.py"):
            rel = init.parent.relative_to(root)
            found.add(".".join([pkg, *rel.parts]) if rel.parts else pkg)
    found = {p for p in found if not any(part.startswith((".", "__")) for part in p.split("."))}
    assert found <= listed, f"not listed in pyproject.toml [tool.setuptools] packages: {sorted(found - listed)}"
