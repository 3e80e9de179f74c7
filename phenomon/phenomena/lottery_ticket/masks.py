"""Pruning masks on disk: plain tensors written atomically, read back with `weights_only` and checked against shapes."""

from __future__ import annotations

import io
from pathlib import Path

from phenomon import store


def masks_bytes(masks) -> bytes:
    """The masks as a `torch.save` file's bytes: plain CPU tensors, nothing a reader would have to unpickle."""
    import torch

    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in masks.items()}, buf)
    return buf.getvalue()


def save_masks(path: str | Path, masks) -> None:
    """Written under a temporary name and renamed (the store's atomic write): a reader never sees a torn file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    store.atomic_write_bytes(path, masks_bytes(masks))


def load_masks(path: str | Path, shapes: dict[str, tuple[int, ...]]):
    """Masks saved by a run (`weights_only`: never unpickles objects); a one-line ValueError if they do not fit."""
    import torch

    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"masks_from: no file {path}") from None
    except Exception as e:  # noqa: BLE001 - anything unreadable is the same one-line mistake
        raise ValueError(f"masks_from: {path} is not a masks file ({e.__class__.__name__})") from None
    if not isinstance(raw, dict) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise ValueError(f"masks_from: {path} does not hold a dict of tensors")
    got = {k: tuple(v.shape) for k, v in raw.items()}
    if got != {k: tuple(v) for k, v in shapes.items()}:
        raise ValueError(f"masks_from: {path} does not fit hidden layers: masks {got} vs network "
                         f"{dict(shapes)}")
    return {k: v.bool() for k, v in raw.items()}
