"""Occlusion-aware fusion: the ``interp_occ`` variant.

The classical part is that of ``interp_hybrid`` (DIS flow both ways, flows to time t, bicubic
warps of both frames). What is learned is the fusion mask: which warped frame to trust where.
Per pixel, cheap cues are computed with OpenCV (forward-backward flow consistency at the
sampled positions, the difference of the two warps, their sharpness, how far each warp moved
its frame, whether a sample fell outside the frame, the flow length), averaged over blocks of
``block`` x ``block`` pixels, and a small per-block network (1x1 convolutions) turns them into a
mask logit, bilinearly upsampled. The cues depend only on the frames and the classical flows,
not on learned weights, so one torch-free NumPy function
(``models.classical.occlusion_features``) serves training, PyTorch inference and the ONNX
engine (whose graph is the per-block network alone).

Why this design: with the true middle frame, the best mask per 8x8 block would lift UCF101
from 33.64 to 34.39 dB (``assets/results/interp_headroom.py``), while learned corrections
working on downscaled images (``interp_hybrid``) learned nothing that held on unseen data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.classical import N_FEATURES, occlusion_features, pixel_grid, warp_to_time
from models.registry import SizeRequirements, register_model
from models.warp import as_time_tensor

__all__ = ["N_FEATURES", "OcclusionFusion", "interp_occ"]

LEAKY_GAIN = math.sqrt(2.0 / (1 + 0.1**2))
HEAD_GAIN = 0.01


class OcclusionFusion(nn.Module):
    """Classical flow and warps, fused by a mask learned from per-block occlusion cues.

    ``forward(img0, img1, t, flow01, flow10)`` has the interface of the hybrid
    :class:`models.frame_generator.FrameGenerator`; the cues are computed with NumPy/OpenCV
    (no gradient is needed through them: they depend only on the inputs).

    Args:
        hidden: features of the per-block network.
        block: block size in pixels (the mask's resolution is 1/block).
        init_seed: m23init seed.
    """

    classical_init = True

    def __init__(self, hidden: int = 32, block: int = 8, init_seed: int = 0) -> None:
        super().__init__()
        if block < 1:
            raise ValueError(f"block must be >= 1, got {block}")
        self.block = block
        self.net = nn.Sequential(
            nn.Conv2d(N_FEATURES, hidden, 1), nn.LeakyReLU(0.1),
            nn.Conv2d(hidden, hidden, 1), nn.LeakyReLU(0.1),
            nn.Conv2d(hidden, 1, 1),
        )
        from m23init import init_model

        init_model(self, scale="norm", seed=init_seed,
                   gain=lambda name, m: HEAD_GAIN if name == "net.4" else LEAKY_GAIN)

    def logit(self, features: Tensor) -> Tensor:
        """(B, N_FEATURES, h, w) cues -> (B, 1, h, w) residual of the fusion logit (the
        starting logit log((1 - t) / t) is added by the caller)."""
        return self.net(features)

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
            img0, img1: (B, 3, H, W) float in [0, 1] (quantized to 8 bits for the classical
                part, as the engine's frames are).
            t: time in (0, 1): a float or B values.
            flow01, flow10: (B, 2, H, W) classical flows in pixels (required).

        Returns:
            (B, 3, H, W) frame at time t in [0, 1].
        """
        if img0.shape != img1.shape or img0.dim() != 4 or img0.shape[1] != 3:
            raise ValueError(f"expected two (B, 3, H, W) tensors, got {img0.shape}, {img1.shape}")
        if flow01 is None or flow10 is None:
            raise ValueError("this hybrid model needs flow01 and flow10 (classical flows)")
        b, _, h, w = img0.shape
        tt = as_time_tensor(t, b, img0)
        dev = img0.device

        def u8(x: Tensor) -> np.ndarray:
            return np.ascontiguousarray(
                x.detach().mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0)
                .cpu().numpy())

        def fl(x: Tensor) -> np.ndarray:
            return np.ascontiguousarray(x.detach().float().permute(1, 2, 0).cpu().numpy())

        grid = pixel_grid(h, w)
        feats, warped0, warped1 = [], [], []
        for i in range(b):
            a, c = u8(img0[i]), u8(img1[i])
            p, q = fl(flow01[i]), fl(flow10[i])
            ti = float(tt[i])
            m0, m1, w0, w1 = warp_to_time(a, c, p, q, ti, grid)
            feats.append(occlusion_features(a, c, p, q, m0, m1, w0, w1, ti, self.block))
            warped0.append(w0)
            warped1.append(w1)

        def stack(xs: list[np.ndarray]) -> Tensor:
            return torch.from_numpy(np.stack(xs)).to(dev).permute(0, 3, 1, 2).float() / 255

        x = torch.from_numpy(np.stack(feats)).to(dev, img0.dtype)
        # The per-block weight of frame 0, bilinearly upsampled (as the engine does).
        m = torch.sigmoid(self.logit(x) + torch.log((1 - tt) / tt))
        m = F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False)
        return (m * stack(warped0) + (1 - m) * stack(warped1)).clamp(0.0, 1.0)


@register_model(
    "interp_occ", kind="interp", size=SizeRequirements(minimum=16, multiple_of=1), fp16=True,
    description="DIS flow (ultrafast, finest level of at most 80k pixels), bicubic warps, fusion "
    "mask learned from per-8x8-block occlusion cues",
    classical={"preset": "ultrafast", "finest_scale": None, "flow_scale": 1.0,
               "max_pixels": 80_000},
    pipeline="hybrid_occ",
)
def interp_occ(**kwargs: Any) -> OcclusionFusion:
    """Classical flow and warps with a learned, occlusion-aware fusion mask."""
    return OcclusionFusion(hidden=32, block=8, **kwargs)

