"""Losses for frame interpolation and super-resolution."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["charbonnier", "gradient_loss", "census_loss", "interp_loss", "log_mse", "psnr",
           "BASE_LOSSES"]


def charbonnier(pred: Tensor, target: Tensor, eps: float = 1e-3) -> Tensor:
    """Mean Charbonnier (smooth L1) distance of two (B, C, H, W) tensors."""
    return torch.sqrt((pred - target) ** 2 + eps * eps).mean()


def gradient_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean L1 distance of horizontal and vertical finite differences, (B, C, H, W)."""
    dxp, dxt = pred[..., :, 1:] - pred[..., :, :-1], target[..., :, 1:] - target[..., :, :-1]
    dyp, dyt = pred[..., 1:, :] - pred[..., :-1, :], target[..., 1:, :] - target[..., :-1, :]
    return (dxp - dxt).abs().mean() + (dyp - dyt).abs().mean()


def census_loss(pred: Tensor, target: Tensor, patch: int = 3) -> Tensor:
    """Soft census (ternary) loss on grayscale, patch x patch neighbourhood.

    Args:
        pred, target: (B, 3, H, W) in [0, 1].
        patch: odd neighbourhood size (3 keeps it cheap on a CPU).
    """
    if patch % 2 != 1:
        raise ValueError(f"patch must be odd, got {patch}")

    def transform(img: Tensor) -> Tensor:
        gray = (0.299 * img[:, 0:1] + 0.587 * img[:, 1:2] + 0.114 * img[:, 2:3]) * 255.0
        patches = F.unfold(gray, patch, padding=patch // 2)
        diff = patches - gray.flatten(2)
        return diff / torch.sqrt(0.81 + diff * diff)

    d = transform(pred) - transform(target)
    return (d * d / (0.1 + d * d)).mean()


def log_mse(pred: Tensor, target: Tensor) -> Tensor:
    """Mean over the samples of log10(MSE), i.e. minus the mean PSNR / 10 for images in
    [0, 1]: the evaluation metric itself, so every sample counts by its relative error."""
    return -psnr(pred, target).mean() / 10.0


BASE_LOSSES = ("charbonnier", "psnr")
"""Names of the pixel terms of :func:`interp_loss`."""


def interp_loss(pred: Tensor, target: Tensor, grad_weight: float = 0.5,
                census_weight: float = 0.0, base: str = "charbonnier") -> Tensor:
    """The interpolation training loss: a pixel term (Charbonnier, or ``base="psnr"`` for
    :func:`log_mse`) + gradient (+ optional census). Tensors (B, 3, H, W) in [0, 1]."""
    if base not in BASE_LOSSES:
        raise ValueError(f"unknown loss {base!r}; choose from {', '.join(BASE_LOSSES)}")
    pixel = charbonnier(pred, target) if base == "charbonnier" else log_mse(pred, target)
    loss = pixel + grad_weight * gradient_loss(pred, target)
    if census_weight > 0:
        loss = loss + census_weight * census_loss(pred, target)
    return loss


def psnr(pred: Tensor, target: Tensor) -> Tensor:
    """Per-sample PSNR in dB of (B, C, H, W) tensors in [0, 1]; shape (B,)."""
    mse = ((pred - target) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return -10.0 * torch.log10(mse)
