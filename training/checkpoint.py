"""Checkpoints: weights and optimizer state as safetensors, training state as JSON.

A checkpoint is a folder with ``model.safetensors`` (weights, with the architecture name in
its metadata), ``optim.safetensors`` (AdamW moments) and ``state.json`` (step, config, metrics).
Every file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["CheckpointError", "save_checkpoint", "load_weights", "load_training_state",
           "atomic_write_bytes", "weights_path", "read_arch"]

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used, with a message for the user."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _save_tensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
    from safetensors.torch import save

    atomic_write_bytes(path, save({k: v.detach().contiguous().cpu() for k, v in tensors.items()},
                                  metadata=meta))


def weights_path(path: str | Path) -> Path:
    """The weights file of a checkpoint folder, or the file itself."""
    p = Path(path)
    return p / "model.safetensors" if p.is_dir() else p


def save_checkpoint(
    folder: str | Path,
    model: nn.Module,
    arch: str,
    optimizer: torch.optim.Optimizer | None,
    state: dict[str, Any],
) -> Path:
    """Save model weights, optimizer moments and the training state into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _save_tensors(folder / "model.safetensors", model.state_dict(),
                  {"arch": arch, "step": str(state.get("step", 0))})
    if optimizer is not None:
        tensors: dict[str, torch.Tensor] = {}
        params = [p for g in optimizer.param_groups for p in g["params"]]
        for i, p in enumerate(params):
            for k, v in optimizer.state.get(p, {}).items():
                if isinstance(v, torch.Tensor):
                    tensors[f"{i}.{k}"] = v.reshape(-1) if v.dim() == 0 else v
        _save_tensors(folder / "optim.safetensors", tensors, {"arch": arch})
    atomic_write_bytes(folder / "state.json", json.dumps(state, indent=2).encode())
    return folder


def read_arch(path: str | Path, arch: str | None = None) -> str:
    """The architecture name of a weights file: ``arch`` if given, else its metadata's.

    Raises:
        CheckpointError: missing or unreadable file, or no architecture recorded.
    """
    from safetensors import SafetensorError, safe_open

    p = weights_path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}")
    if arch is not None:
        return arch
    try:
        with safe_open(str(p), framework="pt") as f:
            found = (f.metadata() or {}).get("arch")
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"cannot read checkpoint {p}: {exc}") from exc
    if found is None:
        raise CheckpointError(f"{p} does not name its architecture; pass --model")
    return found


def load_weights(path: str | Path, model: nn.Module, arch: str | None = None) -> dict[str, str]:
    """Load safetensors weights into ``model``, checking architecture, shapes and finiteness.

    Args:
        path: a ``.safetensors`` file or a checkpoint folder.
        model: the module to fill.
        arch: expected architecture name (checked against the file's metadata when both exist).

    Returns:
        The file's metadata.

    Raises:
        CheckpointError: missing or damaged file, another architecture, NaN/inf weights.
    """
    from safetensors import SafetensorError, safe_open

    p = weights_path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}")
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read checkpoint {p}: {exc}") from exc
    if arch is not None and meta.get("arch") not in (None, arch):
        raise CheckpointError(
            f"checkpoint {p} is for architecture {meta.get('arch')!r}, not {arch!r}"
        )
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    extra = sorted(set(tensors) - set(own))
    bad = [k for k in own if k in tensors and tensors[k].shape != own[k].shape]
    if missing or extra or bad:
        detail = (missing or extra or bad)[0]
        raise CheckpointError(
            f"checkpoint {p} does not fit this architecture ({len(missing)} missing, "
            f"{len(extra)} unexpected, {len(bad)} mis-shaped tensors, e.g. {detail!r})"
        )
    for k, v in tensors.items():
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise CheckpointError(f"checkpoint {p} has non-finite values in {k!r}")
    model.load_state_dict(tensors)
    return meta


def load_training_state(
    folder: str | Path, model: nn.Module, arch: str, optimizer: torch.optim.Optimizer | None
) -> dict[str, Any]:
    """Restore model, optimizer and the JSON state from a checkpoint folder (for ``--resume``)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    load_weights(folder, model, arch)
    state_file = folder / "state.json"
    try:
        state: dict[str, Any] = json.loads(state_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {state_file}: {exc}") from exc
    optim_file = folder / "optim.safetensors"
    if optimizer is not None and optim_file.is_file():
        saved = load_file(str(optim_file))
        params = [p for g in optimizer.param_groups for p in g["params"]]
        for key, v in saved.items():
            i_str, name = key.split(".", 1)
            p = params[int(i_str)]
            if name == "step":
                v = v.reshape(())
            optimizer.state[p][name] = v.to(p.device)
    if not math.isfinite(float(state.get("step", 0))):
        raise CheckpointError(f"bad step in {state_file}")
    return state
