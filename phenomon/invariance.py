"""Invariance of explanation signals under function-preserving ReLU rescalings of a run's final weights.

Dinh, Pascanu, Bengio & Bengio (ICML 2017): multiplying a hidden ReLU layer's incoming weights and bias by c > 0 and
its outgoing weights by 1/c leaves the network's function unchanged. A signal that moves under it while the test
logits stay put cannot be what decides test performance. `check` does this on a live module (the runner calls
`after_run` when training ends); `check_run` rebuilds a finished run's model from its manifest and `weights.pt`
(`phenomon invariance RUN_ID`). Nulls are not recomputed: they are not functions of the weights.
"""

from __future__ import annotations

import io
import math
import time
from pathlib import Path

import torch
from torch import nn

from phenomon import store
from phenomon.callbacks import signals as S
from phenomon.config import UsageError
from phenomon.models.rescaling import PER_UNIT, n_units, per_unit_factors, rescale_, rescaling

CS = (0.5, 2.0, 4.0)
LOGIT_TOL = 1e-4  # max |z_c − z_1| / max |z_1| over the test subset: the function is preserved below this
SIGNAL_TOL = 1e-3  # a signal whose relative change stays below this is called invariant
EPS = 1e-12
TEST_SUBSET = 2048  # the first examples of the test split: logits are compared on these
WEIGHTS, REPORT = "weights.pt", "invariance.json"


# ------------------------------------------------------------------------------- the check


def _logits(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return S._forward(module, x).double()


def signal_rows(module: nn.Module, signals, probe: S.Probe | None) -> dict[str, float]:
    """Every row the signals give on `module`, named as the signal callback names them; inapplicable ones left out."""
    from phenomon.callbacks.signal_callback import row_names

    out: dict[str, float] = {}
    for sig in signals:
        if sig.needs_probe and probe is None:
            continue
        try:
            vals = sig.compute(module, probe if sig.needs_probe else None)
        except Exception:  # noqa: BLE001 - a signal that cannot be computed here has no invariance to report
            continue
        out.update(row_names(sig.name, vals))
    return out


def _rel(a: float, b: float) -> float | None:
    d = abs(a - b) / (abs(b) + EPS)
    return d if math.isfinite(d) else None


def check(module: nn.Module, test_x: torch.Tensor, signals=(), probe: S.Probe | None = None, cs=CS) -> dict:
    """Rescale, compare test logits and signals with the unscaled model, restore; the `invariance.json` object.

    Besides the required one-c-per-layer rescalings, `per_unit` gives every hidden unit its own c: also
    function-preserving, it moves quantities that one scalar per layer cannot (the spectrum of a weight matrix).
    """
    t0, c0 = time.perf_counter(), time.process_time()
    r = rescaling(module)
    tensors = [t for t, _ in r[0] + r[1]]
    saved = [t.detach().clone() for t in tensors]
    z1 = _logits(module, test_x)
    base = signal_rows(module, signals, probe)
    n = n_units(r)
    factors = {f"{c:g}": torch.full((n,), float(c)) for c in cs}
    factors["per_unit"] = per_unit_factors(n)
    moved: dict[str, dict[str, float]] = {}
    diffs: dict[str, float] = {}
    try:
        for key, c in factors.items():
            rescale_(r, c)
            zc = _logits(module, test_x)
            diffs[key] = float((zc - z1).abs().max() / z1.abs().max().clamp_min(EPS))
            moved[key] = signal_rows(module, signals, probe)
            _restore(tensors, saved)
    finally:
        _restore(tensors, saved)
    layer_keys = [k for k in factors if k != "per_unit"]
    diff = max(diffs[k] for k in layer_keys)
    rows, unit_rows = {}, {}
    for name, v in base.items():
        rows[name] = {"base": _num(v), "rescaled": {c: _num(moved[c].get(name)) for c in layer_keys},
                      **_moved(v, [moved[c].get(name) for c in layer_keys])}
        unit_rows[name] = {"value": _num(moved["per_unit"].get(name)), **_moved(v, [moved["per_unit"].get(name)])}
    return {"logits_rel_diff": diff, "function_preserved": diff < LOGIT_TOL, "c": list(cs), "signals": rows,
            "model": type(getattr(module, "net", module)).__name__, "rescaled": r[2], "n_test": int(len(test_x)),
            "tolerance": {"logits": LOGIT_TOL, "signal": SIGNAL_TOL},
            "per_unit": {"c": f"each of the {n} hidden units its own c from {list(PER_UNIT)} (seeded)",
                         "logits_rel_diff": diffs["per_unit"], "function_preserved": diffs["per_unit"] < LOGIT_TOL,
                         "signals": unit_rows},
            "cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - t0}


def _moved(base: float, scaled: list[float | None]) -> dict:
    """rel_change = max over c of |s_c − s_1| / (|s_1| + eps); abs_change beside it (a count rising from 0 has a
    relative change of ~1e12); invariant = rel_change < SIGNAL_TOL; None where a value is missing or not finite."""
    vals = [s for s in scaled if s is not None]
    changes = [_rel(s, base) for s in vals]
    change = None if not changes or None in changes else max(changes)
    absolute = _num(max((abs(s - base) for s in vals), default=math.nan))
    out = {"rel_change": change, "abs_change": absolute, "invariant": None if change is None else change < SIGNAL_TOL}
    if base == 0 and vals and all(v == 0 for v in vals):
        out["all_zero"] = True  # invariant only because it is 0 throughout (a prime count with no |w| >= 1.5)
    return out


def _restore(tensors, saved) -> None:
    with torch.no_grad():
        for t, s in zip(tensors, saved):
            t.copy_(s)


def _num(v):
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v


def eval_inputs(datamodule, device) -> torch.Tensor:
    test = getattr(datamodule, "test", None)
    if not (isinstance(test, tuple) and len(test) == 2):
        raise ValueError("the data module has no (x, y) `test` split to compare logits on")
    return test[0][:TEST_SUBSET].to(device)


# ------------------------------------------------------------------------------- run directories


def save_weights(module: nn.Module, run_dir: Path) -> Path:
    """The module's state_dict as plain CPU tensors (readable with `torch.load(weights_only=True)`), atomically."""
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu().clone() for k, v in module.state_dict().items()}, buf)
    store.atomic_write_bytes(Path(run_dir) / WEIGHTS, buf.getvalue())
    return Path(run_dir) / WEIGHTS


def write_report(run_dir: Path, report: dict) -> Path:
    store.atomic_write_json(Path(run_dir) / REPORT, report)
    return Path(run_dir) / REPORT


def after_run(run_dir: Path, module: nn.Module, datamodule, signals=(), probe: S.Probe | None = None,
              **extra) -> dict:
    """End of a run: save the final weights, check the rescalings with the run's own signals and probe, write both."""
    save_weights(module, run_dir)
    report = {**check(module, eval_inputs(datamodule, module.device), signals, probe), **extra}
    write_report(run_dir, report)
    return report


def _grokking(cfg):
    from phenomon.datamodules.modular import ModularDataModule
    from phenomon.models.grokking import GrokkingModule, build_network

    net = build_network(cfg.model, cfg.p, d_embed=cfg.d_embed, hidden=cfg.hidden, d_model=cfg.d_model,
                        n_heads=cfg.n_heads, d_mlp=cfg.d_mlp)
    return GrokkingModule(net, cfg.p), ModularDataModule(cfg.p, cfg.op, cfg.train_fraction, seed=cfg.seed)


def _double_descent(cfg):
    from phenomon.phenomena.double_descent import training as dd

    dm = dd.datamodule(cfg)
    held_out = (dm.val if dm.val is not None else dm.test)[0][:512]
    return dd.build_module(cfg, dm.train[0], dm.num_classes, eval_x=held_out), dm


def _lottery(cfg):
    from phenomon.datamodules.mnist1d import MNIST1DDataModule
    from phenomon.models.lottery import LotteryModule
    from phenomon.phenomena.lottery_ticket.training import new_net

    dm = MNIST1DDataModule(cfg.train_size, cfg.test_size, batch_size=cfg.batch_size, seed=cfg.seed,
                           data_seed=cfg.data_seed)
    return LotteryModule(new_net(cfg, cfg.seed)), dm


def _emergence(cfg):
    from phenomon.datamodules.addition import AdditionDataModule
    from phenomon.models.emergence import EmergenceModule

    return (EmergenceModule(cfg.k, cfg.width, cfg.depth),
            AdditionDataModule(cfg.k, cfg.train_size, cfg.test_size, cfg.batch_size, cfg.seed, cfg.data_seed))


# phenomenon -> (module with the run's architecture, its data module), built from the resolved config as `execute` does
REBUILD = {"grokking": _grokking, "double_descent": _double_descent, "lottery_ticket": _lottery,
           "emergence": _emergence}


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """A saved state_dict (`weights_only`: never unpickles objects); UsageError in one line if missing or unreadable."""
    if not path.exists():
        raise UsageError(f"{path.parent.name} has no {WEIGHTS} (runs save their final weights when they finish)")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - truncated zip, pickle error, ...: all mean "not a weights file"
        raise UsageError(f"{path} is not a readable weights file ({e.__class__.__name__})") from None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise UsageError(f"{path} does not hold a state_dict of tensors")
    return sd


def check_run(run_dir: Path, write: bool = True) -> dict:
    """Rebuild a finished run's model from its manifest and `weights.pt`, check it, write `invariance.json`."""
    from phenomon import registry
    from phenomon.callbacks.signal_callback import make_probe
    from phenomon.config import from_dict

    run_dir = Path(run_dir)
    m = store.read_manifest(run_dir)
    sd = load_weights(run_dir / WEIGHTS)
    name = m.get("phenomenon", "")
    if name not in REBUILD:
        raise UsageError(f"cannot rebuild a {name!r} model; invariance knows: {', '.join(REBUILD)}")
    cfg = from_dict(registry.get(name).config_cls, m.get("config") or {})
    module, dm = REBUILD[name](cfg)
    try:
        module.load_state_dict(sd)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise UsageError(f"{WEIGHTS} does not fit the run's model: {first[1].strip() if len(first) > 1 else e}") \
            from None
    chosen = m.get("signals")
    names = S.DEFAULT if chosen in (None, "default") else chosen
    dropped = m.get("signals_dropped") or {}
    signals = [S.SIGNALS[n] for n in names if n in S.SIGNALS and n not in dropped and S.SIGNALS[n].applies_to(name)]
    probe = make_probe(dm.train, getattr(cfg, "seed", 0)) if isinstance(getattr(dm, "train", None), tuple) else None
    report = check(module, eval_inputs(dm, "cpu"), signals, probe)
    if (m.get("round") or {}).get("round") is not None:
        report["round"] = m["round"]["round"]
    if write:
        write_report(run_dir, report)
    return report


def table(report: dict) -> str:
    """The report as a few lines: the logits check, then signal, base, relative change, invariant (and per unit)."""
    unit = report.get("per_unit") or {}
    lines = [f"{report['model']}: {report['rescaled']}; c in {', '.join(f'{c:g}' for c in report['c'])}",
             f"test logits: max relative difference {report['logits_rel_diff']:.1e} over {report['n_test']} examples "
             f"({'function preserved' if report['function_preserved'] else 'FUNCTION CHANGED: the check is void'})"]
    if unit:
        lines.append(f"per unit: {unit['c']}: logits {unit['logits_rel_diff']:.1e}")
    lines.append(f"{'signal':<34} {'base':>11} {'rel change':>11}  {'invariant':<9}  {'per unit':>9}")
    fmt = lambda r: ("-" if r.get("rel_change") is None else f"{r['rel_change']:.2e}",  # noqa: E731
                     {True: "yes", False: "no", None: "-"}[r.get("invariant")])
    for name, r in sorted(report["signals"].items()):
        if "@" in name:
            continue
        base = "-" if r["base"] is None else f"{r['base']:.4g}"
        ch, inv = fmt(r)
        uch, uinv = fmt((unit.get("signals") or {}).get(name, {}))
        inv += " (0)" if r.get("all_zero") else ""
        lines.append(f"{name:<34} {base:>11} {ch:>11}  {inv:<9}  {uch:>9} {uinv}")
    if any(r.get("all_zero") for r in report["signals"].values()):
        lines.append("(0): 0 before and after every rescaling, so invariant only vacuously")
    return "\n".join(lines)
