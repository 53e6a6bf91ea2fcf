"""OpticalFlowEstimator: coarse-to-fine bidirectional flow to time t at reduced resolution."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.warp import backward_warp

__all__ = ["FlowBlock", "OpticalFlowEstimator", "level_size"]

# Input normalization: flows (in pixels of the level) and mask logits to roughly unit range.
FLOW_NORM = 1.0 / 8.0
MASK_NORM = 1.0 / 4.0


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.LeakyReLU(0.1))


class FlowBlock(nn.Module):
    """One pyramid level: refines (flow_t0, flow_t1, mask) at 1/``scale`` resolution.

    Works at 1/scale with ``channels`` features and at 1/(2*scale) with ``channels2`` features
    (a U-shaped pair), and predicts residuals of the two flows and of the mask logit.
    """

    def __init__(self, channels: int, channels2: int, scale: int) -> None:
        super().__init__()
        self.scale = scale
        cin = 3 * 4 + 4 + 1 + 1  # img0, img1, warped0, warped1, flows, mask, t
        self.enc = _conv(cin, channels)
        self.down = _conv(channels, channels2, stride=2)
        self.mid = nn.Sequential(_conv(channels2, channels2), _conv(channels2, channels2))
        self.up = nn.Conv2d(channels2, channels, 1)
        self.dec = _conv(channels, channels)
        self.head = nn.Conv2d(channels, 5, 3, 1, 1)

    def core(self, i0: Tensor, i1: Tensor, flow: Tensor, mask: Tensor, t: Tensor) -> Tensor:
        """The learned part, entirely at this level's resolution (h, w).

        Args:
            i0, i1: (B, 3, h, w) frames in [0, 1], downscaled.
            flow: (B, 4, h, w) current flow_t0, flow_t1 in pixels of this resolution.
            mask: (B, 1, h, w) current fusion logit.
            t: (B, 1, 1, 1) time.

        Returns:
            (B, 5, h, w): residuals of the two flows (pixels of this resolution) and of the mask.
        """
        hs, ws = i0.shape[2:]
        w0 = backward_warp(i0, flow[:, :2])
        w1 = backward_warp(i1, flow[:, 2:])
        tt = t.expand(-1, 1, hs, ws)
        x = self.enc(torch.cat((i0, i1, w0, w1, flow * FLOW_NORM, mask * MASK_NORM, tt), 1))
        y = self.mid(self.down(x))
        y = F.interpolate(self.up(y), size=(hs, ws), mode="bilinear", align_corners=False)
        return self.head(self.dec(x + y))

    def forward(
        self, img0: Tensor, img1: Tensor, flow: Tensor, mask: Tensor, t: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Refine the estimate.

        Args:
            img0, img1: (B, 3, H, W) in [0, 1], full resolution.
            flow: (B, 4, H, W) current flow_t0 and flow_t1 in full-resolution pixels.
            mask: (B, 1, H, W) current fusion logit.
            t: (B, 1, 1, 1) time.

        Returns:
            flow (B, 4, H, W) and mask logit (B, 1, H, W), refined, at full resolution.
        """
        h, w = img0.shape[2:]
        size = level_size(h, w, self.scale)

        def down(x: Tensor) -> Tensor:
            return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

        out = self.core(down(img0), down(img1), down(flow) / self.scale, down(mask), t)
        up = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
        return flow + up[:, :4] * self.scale, mask + up[:, 4:5]


def level_size(h: int, w: int, scale: int) -> tuple[int, int]:
    """The (height, width) of a pyramid level: the frame size divided by ``scale`` (rounded
    down; the models' minimum size keeps it at least 1)."""
    return h // scale, w // scale


class OpticalFlowEstimator(nn.Module):
    """Coarse-to-fine estimator of the flows from time t to both frames and a fusion mask.

    Args:
        scales: the pyramid levels, coarse to fine, as downscale factors (e.g. (16, 8, 4) for
            the neural variant, (4,) to refine a classical initial flow).
        channels: features per level at 1/scale.
        channels2: features per level at 1/(2*scale).
    """

    def __init__(
        self,
        scales: tuple[int, ...] = (16, 8, 4),
        channels: tuple[int, ...] = (32, 32, 24),
        channels2: tuple[int, ...] = (48, 48, 32),
    ) -> None:
        super().__init__()
        if not (len(scales) == len(channels) == len(channels2)) or not scales:
            raise ValueError("scales, channels and channels2 must have the same non-zero length")
        self.scales = tuple(scales)
        self.blocks = nn.ModuleList(
            FlowBlock(c, c2, s) for s, c, c2 in zip(scales, channels, channels2)
        )

    def forward(
        self, img0: Tensor, img1: Tensor, t: Tensor, init_flow: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Estimate flows at time t.

        Args:
            img0, img1: (B, 3, H, W) in [0, 1].
            t: (B, 1, 1, 1) time in (0, 1).
            init_flow: optional (B, 4, H, W) initial flow_t0, flow_t1 in pixels (zeros if None).

        Returns:
            flow: (B, 4, H, W) flow_t0 (channels 0-1) and flow_t1 (2-3) in pixels;
            mask: (B, 1, H, W) fusion logit (sigmoid gives the weight of frame 0).
        """
        b, _, h, w = img0.shape
        flow = init_flow if init_flow is not None else img0.new_zeros(b, 4, h, w)
        # The starting logit favours the temporally nearer frame.
        mask = torch.log((1 - t) / t).expand(b, 1, h, w)
        for block in self.blocks:
            flow, mask = block(img0, img1, flow, mask, t)
        return flow, mask
