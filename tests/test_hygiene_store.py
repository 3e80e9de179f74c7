"""The run store is the bottom layer: importing it (every submodule) pulls in polars, not torch, textual or the app."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import phenomon.store

from .conftest import REPO


def _modules_after(imports: str) -> set[str]:
    code = f"import sys; {imports}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    return set(out.stdout.split())

ALLOWED_APP = {"phenomon", "phenomon.config"}  # the store may use the config helpers; nothing else of the app


def test_store_imports_neither_torch_textual_lightning_nor_the_app():
    subs = sorted(f"phenomon.store.{m.name}" for m in pkgutil.iter_modules(phenomon.store.__path__))
    assert {"phenomon.store.segments", "phenomon.store.writer", "phenomon.store.runs", "phenomon.store.reader",
            "phenomon.store.queries", "phenomon.store.axis"} <= set(subs)
    mods = _modules_after("import " + ", ".join(["phenomon.store", *subs]))
    heavy = {m for m in mods if m.split(".")[0] in ("torch", "textual", "pytorch_lightning", "lightning", "rich")}
    assert not heavy, f"the store imports {sorted(heavy)[:5]}"
    app = {m for m in mods if m.startswith("phenomon") and not m.startswith("phenomon.store")} - ALLOWED_APP
    assert not app, f"the store imports app modules above it: {sorted(app)}"
