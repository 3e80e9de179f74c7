"""Typed, frozen hyperparameters: parsing `key=value` overrides, diffs against the baseline, a stable hash."""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from typing import Any

from phenomon.store.queries import config_id


class UsageError(Exception):
    """A user's mistake: the CLI prints it as one line and exits with code 2."""


def fields_of(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _coerce(raw: str, typ: Any, key: str) -> Any:
    if isinstance(typ, str):
        typ = eval(typ, {"typing": typing, "tuple": tuple, "int": int, "float": float, "str": str, "bool": bool})  # noqa: S307 - our own annotations
    origin = typing.get_origin(typ)
    if origin is typing.Literal:
        choices = typing.get_args(typ)
        if raw not in [str(c) for c in choices]:
            raise UsageError(f"{key}={raw!r} is not one of: {', '.join(map(str, choices))}")
        return next(c for c in choices if str(c) == raw)
    if origin is tuple:
        (inner, *_rest) = typing.get_args(typ)
        parts = [p for p in raw.replace(" ", "").split(",") if p]
        if not parts:
            raise UsageError(f"{key}: expected a comma-separated list, got {raw!r}")
        return tuple(_coerce(p, inner, key) for p in parts)
    if typ is bool:
        low = raw.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise UsageError(f"{key}: expected true/false, got {raw!r}")
    if typ is int:
        try:
            f = float(raw)
        except ValueError:
            raise UsageError(f"{key}: expected an integer, got {raw!r}") from None
        if not f.is_integer():
            raise UsageError(f"{key}: expected an integer, got {raw!r}")
        return int(f)
    if typ is float:
        try:
            return float(raw)
        except ValueError:
            raise UsageError(f"{key}: expected a number, got {raw!r}") from None
    return raw


SEED_MAX = 2 ** 32 - 1  # numpy's seeds: 0 … 2**32 − 1
INT_MAX = 2 ** 31 - 1  # no size, count or step of a phenomenon is larger: beyond it is a typo, not a config


def check_value(key: str, v: Any) -> None:
    """Every float finite; seeds in 0 … 2**32 − 1; other integers within ±2**31 (UsageError, one line)."""
    if isinstance(v, tuple):
        for x in v:
            check_value(key, x)
        return
    if isinstance(v, float) and not math.isfinite(v):
        raise UsageError(f"{key} must be a finite number, got {v}")
    if isinstance(v, int) and not isinstance(v, bool):
        if "seed" in key and not 0 <= v <= SEED_MAX:
            raise UsageError(f"{key} must be in 0…{SEED_MAX}, got {v}")
        if abs(v) > INT_MAX:
            raise UsageError(f"{key}={v} is out of range (at most {INT_MAX})")


ACCELERATORS = ("auto", "cpu", "gpu", "cuda")  # cuda is gpu, as Lightning spells it


def check_accelerator(name: str) -> str:
    """`name` as the runs take it (cuda becomes gpu). A GPU asked for where CUDA is not available is one line here,
    before any run starts; torch is imported only to ask."""
    if name not in ACCELERATORS:
        raise UsageError(f"unknown accelerator {name!r}; valid: {', '.join(ACCELERATORS)}")
    if name in ("gpu", "cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UsageError(f"--accelerator {name}: no CUDA device is available here (use auto or cpu)")
        return "gpu"
    return name


def memory_bytes() -> int | None:
    """This machine's physical memory (None when unknown): sizes beyond it are refused before any run starts."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(params: float, data_bytes: float, what: str) -> None:
    """ValueError with the estimate when `params` float32 parameters (with gradients and two Adam moments: 16 bytes
    each) plus `data_bytes` exceed this machine's memory."""
    need, have = 16 * params + data_bytes, memory_bytes()
    if have is not None and need > have:
        raise ValueError(f"{what} needs about {need / 2 ** 30:,.1f} GiB ({params:,.0f} parameters, "
                         f"{data_bytes / 2 ** 30:,.1f} GiB of data); this machine has {have / 2 ** 30:,.1f} GiB")


def parse_overrides(cls, pairs: list[str]) -> dict[str, Any]:
    """`['p=113', 'lr=1e-3']` -> typed values, with errors that list the valid keys."""
    fs = fields_of(cls)
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"--set expects key=value, got {pair!r}")
        key, raw = pair.split("=", 1)
        key = key.strip().replace("-", "_")
        if key not in fs:
            raise UsageError(f"unknown key {key!r}; valid keys: {', '.join(fs)}")
        out[key] = _coerce(raw.strip(), hints[key], key)
        check_value(key, out[key])
    return out


def to_dict(cfg) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(cfg).items()}


def from_dict(cls, d: dict[str, Any]):
    fs = fields_of(cls)
    hints = typing.get_type_hints(cls)
    kw = {}
    for k, v in d.items():
        if k in fs:
            kw[k] = tuple(v) if typing.get_origin(hints[k]) is tuple and isinstance(v, list) else v
    return cls(**kw)


def diff(base, cfg) -> dict[str, Any]:
    """Fields of `cfg` that differ from `base`."""
    a, b = to_dict(base), to_dict(cfg)
    return {k: v for k, v in b.items() if a.get(k) != v}


def config_hash(obj: Any, n: int = 8) -> str:
    """The one configuration identity, `phenomon.store.config_id`; kept for callers not yet moved to it."""
    return config_id(obj, n=n)


def sets_from_files(paths: list[str] | None) -> list[str]:
    """`--config FILE` (YAML or JSON, later files win) as `key=value` pairs, the same keys as `--set`.

    The pairs go before the command line's `--set`, which therefore wins. A list is a tuple field (`seeds: [0, 1]`);
    a nested mapping is an error, as a key the phenomenon does not have is (reported when the pairs are parsed).
    """
    out: list[str] = []
    for path in paths or ():
        out += [f"{k}={_as_text(v, k, path)}" for k, v in _load(path).items()]
    return out


def _load(path: str) -> dict[str, Any]:
    import json
    from pathlib import Path

    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise UsageError(f"--config {path}: {e.strerror or e}") from None
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text)
        else:  # YAML, which JSON also is
            import yaml

            data = yaml.safe_load(text)
    except Exception as e:  # noqa: BLE001 - any parse error is the user's file: one line naming it
        raise UsageError(f"--config {path}: not valid {'JSON' if p.suffix.lower() == '.json' else 'YAML'} "
                         f"({e.__class__.__name__}: {' '.join(str(e).split())[:200]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"--config {path}: expected a mapping of keys to values, got {type(data).__name__}")
    return data


def _as_text(v: Any, key: str, path: str) -> str:
    if isinstance(v, dict):
        raise UsageError(f"--config {path}: {key} is a mapping; keys are flat, as with --set")
    if isinstance(v, (list, tuple)):
        return ",".join(_as_text(x, key, path) for x in v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
