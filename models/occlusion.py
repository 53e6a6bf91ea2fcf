"""Occlusion-aware fusion: the ``interp_occ`` and ``interp_occ4`` variants.

The classical part is that of ``interp_hybrid`` (DIS flow both ways, flows to time t, bicubic
warps of both frames). What is learned is the fusion: which candidate frame to trust where.
Per pixel, cheap cues are computed with OpenCV (forward-backward flow consistency at the
sampled positions, the difference of the two warps, their sharpness, how far each warp moved
its frame, whether a sample fell outside the frame, the flow length), averaged over blocks of
``block`` x ``block`` pixels, and a small per-block network (1x1 convolutions) turns them into
fusion logits, bilinearly upsampled. ``interp_occ4`` adds two candidates made at half
resolution with the flow from frame 1 alone (where the mixed flow of the two warps is wrong
at an occlusion, one of them often is not), with nine more cues, and fuses the four with a
softmax. The cues depend only on the frames and the classical flows, not on learned weights,
so torch-free NumPy functions (``models.classical.occlusion_features``,
``models.classical.extra_candidates``) serve training, PyTorch inference and the ONNX engine
(whose graph is the per-block network alone).

Why this design: with the true middle frame, the best mask per 8x8 block over the two warps
would lift UCF101 from 33.64 to 34.49 dB, and over four candidates (full-resolution versions
of these) to 34.87 dB
(``assets/results/interp_headroom.py``, ``interp_classical_variants.py``), while learned
corrections working on downscaled images (``interp_hybrid``) learned nothing that held on
unseen data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.classical import (
    EXTRA_PRIOR,
    N_EXTRA_FEATURES,
    N_FEATURES,
    fusion_inputs,
    pixel_grid,
)
from models.registry import SizeRequirements, register_model
from models.warp import as_time_tensor

__all__ = ["N_FEATURES", "OcclusionFusion", "fusion_prior", "interp_occ", "interp_occ4"]

LEAKY_GAIN = math.sqrt(2.0 / (1 + 0.1**2))
HEAD_GAIN = 0.01


def fusion_prior(t: Tensor, candidates: int) -> Tensor:
    """The starting logits the network's output is added to, for (B,) times t in (0, 1).

    2 candidates: (B, 1, 1, 1) log((1 - t) / t), the logit of frame 0's weight (sigmoid).
    4 candidates: (B, 4, 1, 1) log(1 - t), log(t), log(1 - t) - 3, log(t) - 3 (softmax over
    w0, w1, c2, c3: the even blend with a little of the extra candidates).
    """
    tv = t.view(-1, 1, 1, 1)
    if candidates == 2:
        return torch.log((1 - tv) / tv)
    a, b = torch.log(1 - tv), torch.log(tv)
    return torch.cat([a, b, a + EXTRA_PRIOR, b + EXTRA_PRIOR], 1)


class OcclusionFusion(nn.Module):
    """Classical flow and warps, fused by a mask learned from per-block occlusion cues.

    ``forward(img0, img1, t, flow01, flow10)`` has the interface of the hybrid
    :class:`models.frame_generator.FrameGenerator`; the cues are computed with NumPy/OpenCV
    (no gradient is needed through them: they depend only on the inputs).

    With ``candidates=4`` two more candidates join the two warps: frames 0 and 1 warped with
    the flow from frame 1 alone, made at half resolution
    (:func:`models.classical.extra_candidates`); the network then gives four logits per block
    and a softmax the weights; the extra pair is blended at half resolution and bilinearly
    upsampled.

    Args:
        hidden: features of the per-block network.
        block: block size in pixels (the mask's resolution is 1/block; even for 4
            candidates).
        candidates: 2 (the two warps) or 4.
        init_seed: m23init seed.
    """

    classical_init = True

    def __init__(self, hidden: int = 32, block: int = 8, candidates: int = 2,
                 init_seed: int = 0) -> None:
        super().__init__()
        if block < 1:
            raise ValueError(f"block must be >= 1, got {block}")
        if candidates not in (2, 4) or (candidates == 4 and block % 2):
            raise ValueError(f"candidates must be 2 or 4 (4 with an even block), got "
                             f"{candidates} with block {block}")
        self.block = block
        self.candidates = candidates
        n_in = N_FEATURES + (N_EXTRA_FEATURES if candidates == 4 else 0)
        self.net = nn.Sequential(
            nn.Conv2d(n_in, hidden, 1), nn.LeakyReLU(0.1),
            nn.Conv2d(hidden, hidden, 1), nn.LeakyReLU(0.1),
            nn.Conv2d(hidden, 1 if candidates == 2 else candidates, 1),
        )
        from m23init import init_model

        init_model(self, scale="norm", seed=init_seed,
                   gain=lambda name, m: HEAD_GAIN if name == "net.4" else LEAKY_GAIN)

    def logit(self, features: Tensor) -> Tensor:
        """(B, F, h, w) cues (F = 12, or 21 with 4 candidates) -> (B, 1 or 4, h, w) residual
        of the fusion logits (:func:`fusion_prior` is added by the caller)."""
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
        feats, warped0, warped1, extra2, extra3 = [], [], [], [], []
        for i in range(b):
            a, c = u8(img0[i]), u8(img1[i])
            p, q = fl(flow01[i]), fl(flow10[i])
            w0, w1, more, cues = fusion_inputs(a, c, p, q, float(tt[i]), self.block,
                                               self.candidates, grid)
            if more is not None:
                extra2.append(more[0])
                extra3.append(more[1])
            feats.append(cues)
            warped0.append(w0)
            warped1.append(w1)

        def stack(xs: list[np.ndarray]) -> Tensor:
            return torch.from_numpy(np.stack(xs)).to(dev).permute(0, 3, 1, 2).float() / 255

        x = torch.from_numpy(np.stack(feats)).to(dev, img0.dtype)
        prior = fusion_prior(tt, self.candidates)
        if self.candidates == 2:
            # The per-block weight of frame 0, bilinearly upsampled (as the engine does).
            m = torch.sigmoid(self.logit(x) + prior)
            m = F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False)
            return (m * stack(warped0) + (1 - m) * stack(warped1)).clamp(0.0, 1.0)
        wts = torch.softmax(self.logit(x) + prior, 1)
        e2, e3 = stack(extra2), stack(extra3)
        hh, hw = e2.shape[-2:]
        # The extra pair is blended at half resolution, then upsampled to the whole blocks and
        # edge-padded to the frame (the engine does the same with OpenCV).
        wh = F.interpolate(wts[:, 2:], size=(hh, hw), mode="bilinear", align_corners=False)
        pair = (wh[:, :1] * e2 + wh[:, 1:] * e3) / (wh.sum(1, keepdim=True) + 1e-6)
        ch, cw = 2 * hh, 2 * hw  # H, W cropped to whole blocks
        pair = F.interpolate(pair, size=(ch, cw), mode="bilinear", align_corners=False)
        pair = F.pad(pair, (0, w - cw, 0, h - ch), mode="replicate")
        wf = F.interpolate(wts, size=(h, w), mode="bilinear", align_corners=False)
        out = wf[:, :1] * stack(warped0) + wf[:, 1:2] * stack(warped1)
        return (out + wf[:, 2:].sum(1, keepdim=True) * pair).clamp(0.0, 1.0)


# What both variants share: the registry entry's size rule, fp16 support, classical flow and
# the engine pipeline.
_COMMON: dict[str, Any] = {
    "kind": "interp", "size": SizeRequirements(minimum=16, multiple_of=1), "fp16": True,
    "classical": {"preset": "ultrafast", "finest_scale": None, "flow_scale": 1.0,
                  "max_pixels": 80_000},
    "pipeline": "hybrid_occ",
}


@register_model(
    "interp_occ", description="DIS flow (ultrafast, finest level of at most 80k pixels), bicubic "
    "warps, fusion mask learned from per-8x8-block occlusion cues", **_COMMON)
def interp_occ(**kwargs: Any) -> OcclusionFusion:
    """Classical flow and warps with a learned, occlusion-aware fusion mask."""
    return OcclusionFusion(hidden=32, block=8, **kwargs)


@register_model(
    "interp_occ4", description="DIS flow (ultrafast, finest level of at most 80k pixels), bicubic "
    "warps and two half-resolution candidates from one flow, fused by weights learned per 8x8 "
    "block", **_COMMON)
def interp_occ4(**kwargs: Any) -> OcclusionFusion:
    """:func:`interp_occ` with two more candidate frames (four-way fusion)."""
    return OcclusionFusion(hidden=32, block=8, candidates=4, **kwargs)
