"""Classical optical flow (OpenCV DIS) used by the hybrid frame generator and the baselines.

NumPy and OpenCV only (no torch), so the ONNX deployment path can use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DISConfig", "dis_flows", "warp_backward_np", "dis_interpolate"]

_PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}


@dataclass(frozen=True)
class DISConfig:
    """Settings of OpenCV's DIS flow.

    Attributes:
        preset: "ultrafast", "fast" or "medium".
        finest_scale: finest pyramid level (None keeps the preset's; 1 is twice as fine as
            ultrafast's 2 and measurably better for interpolation).
        flow_scale: the frames are resized by this factor before the flow is computed.
        max_pixels: a budget for the finest pyramid level, used when ``finest_scale`` is None:
            the finest level is the finest one with at most this many pixels (320x240 frames
            get full-resolution flow, 640x480 half, 960x540 and 854x480 a quarter), so the
            cost of the flow stays bounded at every frame size. None keeps the preset's level.
    """

    preset: str = "ultrafast"
    finest_scale: int | None = None
    flow_scale: float = 1.0
    max_pixels: int | None = None

    def level(self, height: int, width: int) -> int | None:
        """The finest pyramid level for frames of this size (None: the preset's own)."""
        if self.finest_scale is not None:
            return self.finest_scale
        if self.max_pixels is None:
            return None
        level = 0
        while height * width > self.max_pixels * 4**level and level < 6:
            level += 1
        return level

    def __post_init__(self) -> None:
        if self.preset not in _PRESETS:
            raise ValueError(f"preset must be one of {sorted(_PRESETS)}, got {self.preset!r}")
        if not 0 < self.flow_scale <= 1:
            raise ValueError(f"flow_scale must be in (0, 1], got {self.flow_scale}")
        if self.max_pixels is not None and self.max_pixels < 64:
            raise ValueError(f"max_pixels must be at least 64, got {self.max_pixels}")


def _gray(img: np.ndarray) -> np.ndarray:
    import cv2

    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {img.shape} {img.dtype}")
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


def dis_flows(
    img0: np.ndarray, img1: np.ndarray, config: DISConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Bidirectional DIS flow between two frames.

    Args:
        img0: (H, W, 3) uint8 RGB.
        img1: (H, W, 3) uint8 RGB, same size.
        config: DIS settings.

    Returns:
        flow01, flow10: (H, W, 2) float32 pixel displacements (x, y): img0 at p matches img1 at
        p + flow01(p), and the reverse.
    """
    import cv2

    cfg = config or DISConfig()
    if img0.shape != img1.shape:
        raise ValueError(f"frames differ in size: {img0.shape} vs {img1.shape}")
    g0, g1 = _gray(img0), _gray(img1)
    h, w = g0.shape
    if cfg.flow_scale != 1.0:
        size = (max(8, round(w * cfg.flow_scale)), max(8, round(h * cfg.flow_scale)))
        g0 = cv2.resize(g0, size, interpolation=cv2.INTER_AREA)
        g1 = cv2.resize(g1, size, interpolation=cv2.INTER_AREA)
    dis = cv2.DISOpticalFlow_create(_PRESETS[cfg.preset])  # type: ignore[attr-defined]
    level = cfg.level(*g0.shape)
    if level is not None:
        dis.setFinestScale(level)
    f01 = dis.calc(g0, g1, None)
    f10 = dis.calc(g1, g0, None)
    if cfg.flow_scale != 1.0:
        sx, sy = w / g0.shape[1], h / g0.shape[0]
        factor = np.array([sx, sy], dtype=np.float32)
        f01 = cv2.resize(f01, (w, h), interpolation=cv2.INTER_LINEAR) * factor
        f10 = cv2.resize(f10, (w, h), interpolation=cv2.INTER_LINEAR) * factor
    return f01.astype(np.float32, copy=False), f10.astype(np.float32, copy=False)


def warp_backward_np(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``img`` at p + flow(p) (bilinear, border replicate).

    Args:
        img: (H, W, C) image of any dtype cv2.remap supports.
        flow: (H, W, 2) float32 displacement in pixels.

    Returns:
        (H, W, C) warped image, same dtype as ``img``.
    """
    import cv2

    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(
        img, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def dis_interpolate(
    img0: np.ndarray, img1: np.ndarray, t: float = 0.5, config: DISConfig | None = None
) -> np.ndarray:
    """The classical baseline: DIS flow both ways, each frame warped to time t, blended.

    Each frame is backward-warped with its own flow scaled to time t (img0 with -t*flow01,
    img1 with -(1-t)*flow10) and the two are blended with weights (1-t, t).

    Returns:
        (H, W, 3) uint8 RGB frame at time t.
    """
    f01, f10 = dis_flows(img0, img1, config)
    w0 = warp_backward_np(img0, -t * f01).astype(np.float32)
    w1 = warp_backward_np(img1, -(1.0 - t) * f10).astype(np.float32)
    out = (1.0 - t) * w0 + t * w1
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
