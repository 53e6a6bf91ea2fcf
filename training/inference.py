"""Run a PyTorch interpolation checkpoint on uint8 frames (for evaluation and while training)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.classical import DISConfig, dis_flows
from models.registry import get_model, get_spec
from training.checkpoint import CheckpointError, load_weights, read_arch, weights_path

__all__ = ["TorchInterpolator", "load_interpolator", "SHIPPED_INTERP"]

SHIPPED_INTERP = Path(__file__).resolve().parent.parent / "assets" / "interp_occ4.safetensors"


class TorchInterpolator:
    """Callable ``(frame0, frame1, times) -> frames`` on (H, W, 3) uint8 RGB arrays.

    The classical flow (hybrid models) is computed once per pair; all times run as one batch.
    """

    def __init__(self, model: nn.Module, dis: DISConfig | None) -> None:
        self.model = model.eval()
        self.dis = dis

    @torch.inference_mode()
    def __call__(self, f0: np.ndarray, f1: np.ndarray, ts: Sequence[float]) -> list[np.ndarray]:
        n = len(ts)
        x0 = torch.from_numpy(f0).permute(2, 0, 1).unsqueeze(0).float().div_(255)
        x1 = torch.from_numpy(f1).permute(2, 0, 1).unsqueeze(0).float().div_(255)
        t = torch.tensor(list(ts), dtype=torch.float32)
        fl01 = fl10 = None
        if self.dis is not None:
            a, b = dis_flows(f0, f1, self.dis)
            fl01 = torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0).expand(n, -1, -1, -1)
            fl10 = torch.from_numpy(b).permute(2, 0, 1).unsqueeze(0).expand(n, -1, -1, -1)
        out = self.model(x0.expand(n, -1, -1, -1), x1.expand(n, -1, -1, -1), t, fl01, fl10)
        arr = out.mul(255).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        return [np.ascontiguousarray(a) for a in arr]


def load_interpolator(
    checkpoint: str | Path | None = None, arch: str | None = None
) -> tuple[str, TorchInterpolator]:
    """Load weights (default: the shipped hybrid model) and wrap them.

    The architecture comes from ``arch`` or the weights file's metadata.

    Raises:
        CheckpointError: missing/damaged file, unknown or mismatched architecture, NaN weights.
    """
    path = weights_path(checkpoint) if checkpoint else SHIPPED_INTERP
    arch = read_arch(path, arch)
    try:
        spec = get_spec(arch)
    except KeyError as exc:
        raise CheckpointError(str(exc.args[0])) from None
    if spec.kind != "interp":
        raise CheckpointError(f"{path} holds a {spec.kind} model ({arch}), not interpolation")
    model = get_model(arch)
    load_weights(path, model, arch)
    c = spec.extra.get("classical")
    return arch, TorchInterpolator(model, None if c is None else DISConfig(**c))
