"""SuperResolutionNet: low-resolution features, PixelShuffle up, residual over bilinear.

The whole net runs at the input (low) resolution: a few 3x3 convolutions with ReLU, and a last
3x3 convolution that predicts ``s * s`` sub-pixel values per input pixel, which
``PixelShuffle`` puts on the output grid. The prediction is a residual over a plain bilinear
upscale, so an untrained net is a bilinear upscaler (its last layer starts near zero).

By default the residual is a luma correction: one value per output pixel, added to R, G and B
alike, so the colour (chroma) stays that of the bilinear upscale while detail (luma, which is
what PSNR on Y measures and what the eye resolves) is learned. That keeps the pixel shuffle and
the final addition small; video carries chroma at half resolution anyway. With
``color_residual=True`` the net predicts one residual per RGB channel instead.

Costs on a CPU are set by the 3x3 convolutions at input resolution: FLOPs per input pixel are
about ``2 * 9 * channels**2`` per hidden layer (see the ``flops_per_px`` of each registered
variant, counted with ``torch.utils.flop_counter``).
"""

from __future__ import annotations

import math
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from models.registry import SizeRequirements, register_model

__all__ = ["SuperResolutionNet", "sr_tiny_x2", "sr_tiny_x4", "sr_x2", "sr_x4"]

RELU_GAIN = math.sqrt(2.0)
TAIL_GAIN = 0.01


class SuperResolutionNet(nn.Module):
    """Upscales a frame by 2 or 4.

    Args:
        scale_factor: 2 or 4.
        channels: feature width at the input resolution (multiples of 8 run best on CPUs).
        num_layers: 3x3 conv + ReLU layers before the output conv.
        color_residual: predict a residual per RGB channel instead of one luma residual.
        tail: the output layer: ``"conv3"`` (3x3 conv), ``"conv1"`` (1x1 conv) or
            ``"separable"`` (3x3 depthwise then 1x1). ONNX Runtime's CPU kernels run a 3x3
            conv with few (4) outputs nearly as slowly as a full 16 -> 16 one, the other two
            about four times faster; yet in equal short trainings of the 16-channel x2 net
            both lost about 0.5 dB on Set5 against ``"conv3"``, which is why the registered
            variants use it.
        init_seed: seed of the M23 initialization (``m23init.init_model``, norm mode).
    """

    def __init__(
        self,
        scale_factor: int = 2,
        channels: int = 16,
        num_layers: int = 3,
        color_residual: bool = False,
        tail: str = "conv3",
        init_seed: int = 0,
    ) -> None:
        super().__init__()
        if scale_factor not in (2, 4):
            raise ValueError(f"scale_factor must be 2 or 4, got {scale_factor}")
        if channels < 1 or num_layers < 1:
            raise ValueError(
                f"channels and num_layers must be positive, got {channels}, {num_layers}")
        if tail not in ("conv3", "conv1", "separable"):
            raise ValueError(f"tail must be conv3, conv1 or separable, got {tail!r}")
        self.scale_factor = scale_factor
        self.color_residual = color_residual
        layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, 1, 1), nn.ReLU(inplace=True)]
        for _ in range(num_layers - 1):
            layers += [nn.Conv2d(channels, channels, 3, 1, 1), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        out = (3 if color_residual else 1) * scale_factor**2
        self.tail: nn.Module
        if tail == "separable":
            self.tail = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1, groups=channels),
                                      nn.Conv2d(channels, out, 1))
        else:
            k = 3 if tail == "conv3" else 1
            self.tail = nn.Conv2d(channels, out, k, 1, k // 2)
        self.shuffle = nn.PixelShuffle(scale_factor)
        from m23init import init_model

        # Gains match the ReLUs (1 before no activation); the last conv starts small so the
        # net starts as a bilinear upscaler.
        init_model(self, scale="norm", seed=init_seed, gain=_gain)

    def forward(self, x: Tensor) -> Tensor:
        """Upscale.

        Args:
            x: (B, 3, H, W) float in [0, 1], any H, W >= 1.

        Returns:
            (B, 3, s*H, s*W) in [0, 1].
        """
        base = F.interpolate(x, scale_factor=self.scale_factor, mode="bilinear",
                             align_corners=False)
        # (B, 1, sH, sW) luma residual broadcasts over the colours; (B, 3, sH, sW) otherwise.
        return (base + self.shuffle(self.tail(self.body(x)))).clamp(0.0, 1.0)


def _gain(name: str, module: nn.Module) -> float:
    if name in ("tail", "tail.1"):
        return TAIL_GAIN
    return 1.0 if name == "tail.0" else RELU_GAIN


_SIZE = SizeRequirements(minimum=1, multiple_of=1)


def _make(scale: int, channels: int, layers: int, kwargs: dict[str, Any]) -> SuperResolutionNet:
    return SuperResolutionNet(scale_factor=scale, channels=channels, num_layers=layers, **kwargs)


# params and flops_per_px (FLOPs per input pixel, torch.utils.flop_counter: convolutions,
# 2 per multiply-add) are checked against the built models by tests/test_sr.py.
@register_model("sr_tiny_x2", kind="sr", size=_SIZE, fp16=True, scale=2,
                description="8 channels, 3 layers, luma residual over bilinear",
                params=1_684, flops_per_px=3_312)
def sr_tiny_x2(**kwargs: Any) -> SuperResolutionNet:
    """Cheapest x2 net (8 channels, 3 layers)."""
    return _make(2, 8, 3, kwargs)


@register_model("sr_tiny_x4", kind="sr", size=_SIZE, fp16=True, scale=4,
                description="8 channels, 3 layers, luma residual over bilinear",
                params=2_560, flops_per_px=5_040)
def sr_tiny_x4(**kwargs: Any) -> SuperResolutionNet:
    """Cheapest x4 net (8 channels, 3 layers)."""
    return _make(4, 8, 3, kwargs)


@register_model("sr_x2", kind="sr", size=_SIZE, fp16=True, scale=2,
                description="16 channels, 3 layers, luma residual over bilinear",
                params=5_668, flops_per_px=11_232)
def sr_x2(**kwargs: Any) -> SuperResolutionNet:
    """Default x2 net (16 channels, 3 layers): 360p -> 720p at video rate on 2 CPU cores."""
    return _make(2, 16, 3, kwargs)


@register_model("sr_x4", kind="sr", size=_SIZE, fp16=True, scale=4,
                description="24 channels, 4 layers, luma residual over bilinear",
                params=19_768, flops_per_px=39_312)
def sr_x4(**kwargs: Any) -> SuperResolutionNet:
    """Default x4 net (24 channels, 4 layers)."""
    return _make(4, 24, 4, kwargs)
