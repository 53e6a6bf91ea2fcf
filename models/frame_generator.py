"""FrameGenerator: timestep-conditioned, flow-based frame interpolation."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from models.flow import FlowBlock, OpticalFlowEstimator
from models.registry import SizeRequirements, register_model
from models.warp import as_time_tensor, backward_warp, intermediate_flows

__all__ = ["FrameGenerator", "HybridCore", "interp_hybrid", "interp_hybrid_tiny", "interp_neural"]

LEAKY_GAIN = math.sqrt(2.0 / (1 + 0.1**2))
HEAD_GAIN = 0.01


class FrameGenerator(nn.Module):
    """Synthesizes the frame at time t between two frames.

    Flow from t to both frames is estimated at reduced resolution (coarse to fine), optionally
    starting from a classical flow (the hybrid variants); both frames are backward-warped at full
    resolution, fused with a soft mask, and a small full-resolution net adds a residual.

    Args:
        scales: pyramid levels of the flow estimator (downscale factors, coarse to fine).
        channels: features per level at 1/scale.
        channels2: features per level at 1/(2*scale).
        refine_channels: features of the full-resolution refinement (0 disables it).
        warp_mode: interpolation of the full-resolution warps, "bicubic" or "bilinear".
        classical_init: whether ``forward`` expects classical bidirectional flows
            (``flow01``, ``flow10``) as the initial estimate.
    """

    def __init__(
        self,
        scales: tuple[int, ...] = (16, 8, 4),
        channels: tuple[int, ...] = (32, 32, 24),
        channels2: tuple[int, ...] = (48, 48, 32),
        refine_channels: int = 8,
        classical_init: bool = False,
        init_seed: int = 0,
        warp_mode: str = "bicubic",
    ) -> None:
        super().__init__()
        if warp_mode not in ("bilinear", "bicubic"):
            raise ValueError(f"warp_mode must be bilinear or bicubic, got {warp_mode!r}")
        self.classical_init = classical_init
        self.warp_mode = warp_mode
        self.flow = OpticalFlowEstimator(scales, channels, channels2)
        self.refine: nn.Module | None = None
        if refine_channels > 0:
            self.refine = nn.Sequential(
                nn.Conv2d(10, refine_channels, 3, 1, 1),
                nn.LeakyReLU(0.1),
                nn.Conv2d(refine_channels, 3, 3, 1, 1),
            )
        self._init_weights(init_seed)

    def _init_weights(self, seed: int) -> None:
        from m23init import init_model

        def gain(name: str, module: nn.Module) -> float:
            # Output layers start near zero, so an untrained hybrid equals its classical start.
            if name.endswith("head") or name == "refine.2":
                return HEAD_GAIN
            return LEAKY_GAIN

        init_model(self, scale="norm", gain=gain, seed=seed)

    def forward(
        self,
        img0: Tensor,
        img1: Tensor,
        t: float | Tensor = 0.5,
        flow01: Tensor | None = None,
        flow10: Tensor | None = None,
    ) -> Tensor:
        """Interpolate.

        Args:
            img0, img1: (B, 3, H, W) float in [0, 1], any H, W >= 16.
            t: time in (0, 1): a float, or a tensor of B values (shape (B,) or (B, 1, 1, 1)).
            flow01, flow10: (B, 2, H, W) classical flows in pixels (required by the hybrid
                variants, ignored otherwise).

        Returns:
            (B, 3, H, W) frame at time t, in [0, 1].
        """
        if img0.shape != img1.shape or img0.dim() != 4 or img0.shape[1] != 3:
            raise ValueError(f"expected two (B, 3, H, W) tensors, got {img0.shape}, {img1.shape}")
        b = img0.shape[0]
        tt = as_time_tensor(t, b, img0)
        init = None
        if self.classical_init:
            if flow01 is None or flow10 is None:
                raise ValueError("this hybrid model needs flow01 and flow10 (classical flows)")
            ft0, ft1 = intermediate_flows(flow01, flow10, tt)
            init = torch.cat((ft0, ft1), 1)
        flow, mask_logit = self.flow(img0, img1, tt, init)
        w0 = backward_warp(img0, flow[:, :2], self.warp_mode)
        w1 = backward_warp(img1, flow[:, 2:], self.warp_mode)
        m = torch.sigmoid(mask_logit)
        out = m * w0 + (1 - m) * w1
        if self.refine is not None:
            out = out + self.refine(torch.cat((out, w0, w1, m), 1))
        return out.clamp(0.0, 1.0)


class HybridCore(nn.Module):
    """The learned part of a single-level hybrid model, for deployment.

    Everything at full resolution (classical flow, up/down-scaling, bicubic warps, blending) is
    done by the engine with OpenCV, which is several times faster on a CPU than ONNX Runtime's
    GridSample; this module holds only what runs at 1/scale.

    Inputs: img0, img1 (B, 3, h, w) in [0, 1] and flow (B, 4, h, w) (flow_t0, flow_t1 in pixels
    of this resolution), all bilinearly downscaled from full resolution to
    ``models.flow.level_size(H, W, scale)``; t (B, 1, 1, 1).
    Output: (B, 5, h, w) residuals of the flows (pixels of this resolution) and of the mask logit,
    whose starting value is log((1 - t) / t).
    """

    def __init__(self, generator: FrameGenerator) -> None:
        super().__init__()
        if not generator.classical_init or len(generator.flow.blocks) != 1:
            raise ValueError("HybridCore needs a hybrid FrameGenerator with one pyramid level")
        block = generator.flow.blocks[0]
        assert isinstance(block, FlowBlock)
        self.block: FlowBlock = block
        self.scale: int = block.scale

    def forward(self, img0: Tensor, img1: Tensor, flow: Tensor, t: Tensor) -> Tensor:
        mask = torch.log((1 - t) / t).expand(-1, 1, img0.shape[2], img0.shape[3])
        return self.block.core(img0, img1, flow, mask, t)


_SIZE = SizeRequirements(minimum=16, multiple_of=1)


@register_model(
    "interp_hybrid", kind="interp", size=_SIZE, fp16=True,
    description="DIS flow (ultrafast, finest level of at most 80k pixels), learned correction "
    "and mask at 1/8 and 1/16, bicubic warps",
    classical={"preset": "ultrafast", "finest_scale": None, "flow_scale": 1.0,
               "max_pixels": 80_000},
)
def interp_hybrid(**kwargs: Any) -> FrameGenerator:
    """The CPU default: classical flow plus a learned correction, mask and refinement."""
    return FrameGenerator(
        scales=(8,), channels=(24,), channels2=(48,), refine_channels=0, classical_init=True,
        **kwargs,
    )


@register_model(
    "interp_hybrid_tiny", kind="interp", size=_SIZE, fp16=True,
    description="DIS ultrafast flow refined at 1/8 and 1/16, mask, no refinement",
    classical={"preset": "ultrafast", "finest_scale": None, "flow_scale": 1.0},
)
def interp_hybrid_tiny(**kwargs: Any) -> FrameGenerator:
    """The cheapest variant: classical flow plus a coarse learned correction and mask."""
    return FrameGenerator(
        scales=(8,), channels=(24,), channels2=(32,), refine_channels=0, classical_init=True,
        **kwargs,
    )


@register_model(
    "interp_neural", kind="interp", size=_SIZE, fp16=True,
    description="all-neural coarse-to-fine flow (1/16, 1/8, 1/4), mask, refinement; for GPUs",
)
def interp_neural(**kwargs: Any) -> FrameGenerator:
    """The all-neural variant (everything in one ONNX graph)."""
    return FrameGenerator(
        scales=(16, 8, 4), channels=(48, 40, 32), channels2=(64, 56, 48), refine_channels=16,
        classical_init=False, **kwargs,
    )
