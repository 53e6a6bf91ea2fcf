"""SuperResolutionNet: low-resolution features, PixelShuffle up, residual over bilinear."""

from __future__ import annotations

import math
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from models.registry import SizeRequirements, register_model

__all__ = ["SuperResolutionNet", "sr_tiny_x2", "sr_tiny_x4", "sr_x2", "sr_x4"]


class SuperResolutionNet(nn.Module):
    """Upscales a frame by 2 or 4.

    Args:
        scale_factor: 2 or 4.
        channels: feature width at the input resolution.
        num_layers: 3x3 conv layers in the body.
    """

    def __init__(
        self, scale_factor: int = 2, channels: int = 32, num_layers: int = 4, init_seed: int = 0
    ) -> None:
        super().__init__()
        if scale_factor not in (2, 4):
            raise ValueError(f"scale_factor must be 2 or 4, got {scale_factor}")
        if channels < 1 or num_layers < 1:
            raise ValueError("channels and num_layers must be positive")
        self.scale_factor = scale_factor
        layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, 1, 1), nn.LeakyReLU(0.1)]
        for _ in range(num_layers - 1):
            layers += [nn.Conv2d(channels, channels, 3, 1, 1), nn.LeakyReLU(0.1)]
        self.body = nn.Sequential(*layers)
        self.tail = nn.Conv2d(channels, 3 * scale_factor**2, 3, 1, 1)
        self.shuffle = nn.PixelShuffle(scale_factor)
        from m23init import init_model

        leaky = math.sqrt(2.0 / (1 + 0.1**2))
        init_model(
            self, scale="norm", seed=init_seed,
            gain=lambda name, m: 0.01 if name == "tail" else leaky,
        )

    def forward(self, x: Tensor) -> Tensor:
        """Upscale.

        Args:
            x: (B, 3, H, W) in [0, 1], any H, W >= 1.

        Returns:
            (B, 3, s*H, s*W) in [0, 1].
        """
        base = F.interpolate(
            x, scale_factor=self.scale_factor, mode="bilinear", align_corners=False
        )
        return (base + self.shuffle(self.tail(self.body(x)))).clamp(0.0, 1.0)


_SIZE = SizeRequirements(minimum=1, multiple_of=1)


def _make(scale: int, channels: int, layers: int, kwargs: dict[str, Any]) -> SuperResolutionNet:
    return SuperResolutionNet(scale_factor=scale, channels=channels, num_layers=layers, **kwargs)


@register_model("sr_tiny_x2", kind="sr", size=_SIZE, fp16=True, scale=2)
def sr_tiny_x2(**kwargs: Any) -> SuperResolutionNet:
    """Small x2 net (16 channels, 3 layers)."""
    return _make(2, 16, 3, kwargs)


@register_model("sr_tiny_x4", kind="sr", size=_SIZE, fp16=True, scale=4)
def sr_tiny_x4(**kwargs: Any) -> SuperResolutionNet:
    """Small x4 net (16 channels, 3 layers)."""
    return _make(4, 16, 3, kwargs)


@register_model("sr_x2", kind="sr", size=_SIZE, fp16=True, scale=2)
def sr_x2(**kwargs: Any) -> SuperResolutionNet:
    """Default x2 net (32 channels, 4 layers)."""
    return _make(2, 32, 4, kwargs)


@register_model("sr_x4", kind="sr", size=_SIZE, fp16=True, scale=4)
def sr_x4(**kwargs: Any) -> SuperResolutionNet:
    """Default x4 net (32 channels, 4 layers)."""
    return _make(4, 32, 4, kwargs)
