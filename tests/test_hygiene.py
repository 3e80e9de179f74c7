"""The dependency direction: training code never imports the TUI, and the store never imports torch."""

from __future__ import annotations

import subprocess
import sys

from .conftest import REPO


def _modules_after(imports: str) -> set[str]:
    code = f"import sys; {imports}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    return set(out.stdout.split())


def test_training_side_never_imports_textual_or_tui():
    mods = _modules_after("import phenomon.models.grokking, datamodules.modular, callbacks.stream, callbacks.progress, "
                          "phenomon.runner, phenomon.phenomena")
    assert not {m for m in mods if m.split(".")[0] in ("textual", "tui")}


def test_store_and_registry_do_not_import_torch():
    mods = _modules_after("import phenomon.store, phenomon.registry, phenomon.cli, phenomon.launcher")
    assert "torch" not in mods and "pytorch_lightning" not in mods
