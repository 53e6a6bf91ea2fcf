"""Classical optical flow (OpenCV DIS) used by the hybrid frame generator and the baselines.

NumPy and OpenCV only (no torch), so the ONNX deployment path can use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DISConfig", "EXTRA_PRIOR", "N_EXTRA_FEATURES", "N_FEATURES", "dis_flows",
           "dis_interpolate", "extra_candidates", "fusion_inputs", "half_frames",
           "occlusion_features", "pixel_grid", "warp_backward_np", "warp_to_time"]

_PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}

# Number of per-block cues of occlusion_features.
N_FEATURES = 12
# Number of per-block cues extra_candidates adds.
N_EXTRA_FEATURES = 9
# Starting fusion logit of each extra candidate relative to its frame's (about 5% of the
# weight); shared by the PyTorch model and the ONNX engine.
EXTRA_PRIOR = -3.0


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


def pixel_grid(h: int, w: int) -> np.ndarray:
    """(H, W, 2) float32 pixel coordinates (x, y)."""
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return np.ascontiguousarray(np.dstack((gx, gy)))


def warp_to_time(
    f0: np.ndarray, f1: np.ndarray, flow01: np.ndarray, flow10: np.ndarray, t: float,
    grid: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Both frames backward-warped to time t (Super-SloMo flow combination, bicubic).

    Args:
        f0, f1: (H, W, 3) uint8 RGB.
        flow01, flow10: (H, W, 2) float32 classical flows in pixels.
        t: time in (0, 1).
        grid: optional cached :func:`pixel_grid` of this size.

    Returns:
        map0, map1: (H, W, 2) float32 sampling positions in frames 0 and 1;
        w0, w1: (H, W, 3) uint8 warped frames.
    """
    import cv2

    h, w = f0.shape[:2]
    g = pixel_grid(h, w) if grid is None else grid
    map0 = cv2.add(cv2.addWeighted(flow01, -(1 - t) * t, flow10, t * t, 0.0), g)
    map1 = cv2.add(cv2.addWeighted(flow01, (1 - t) ** 2, flow10, -t * (1 - t), 0.0), g)
    w0 = cv2.remap(f0, map0, None, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    w1 = cv2.remap(f1, map1, None, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return map0, map1, w0, w1


def half_frames(
    w0: np.ndarray, w1: np.ndarray, f0: np.ndarray, f1: np.ndarray, block: int
) -> tuple[np.ndarray, ...]:
    """The four frames cropped to whole blocks and averaged over 2x2 pixels (uint8), as
    :func:`occlusion_features` and :func:`extra_candidates` use them (compute once, pass to
    both)."""
    import cv2

    h, w = f0.shape[:2]
    ch, cw = min(h, max(1, h // block) * block), min(w, max(1, w // block) * block)
    half = (cw // 2, ch // 2) if cw >= 2 and ch >= 2 else (cw, ch)
    return tuple(cv2.resize(img[:ch, :cw], half, interpolation=cv2.INTER_AREA)
                 for img in (w0, w1, f0, f1))


def occlusion_features(
    f0: np.ndarray, f1: np.ndarray, flow01: np.ndarray, flow10: np.ndarray,
    map0: np.ndarray, map1: np.ndarray, w0: np.ndarray, w1: np.ndarray, t: float,
    block: int, halves: tuple[np.ndarray, ...] | None = None,
) -> np.ndarray:
    """The per-block cues the learned fusion of ``interp_occ`` reads.

    Full-resolution work is limited to 8-bit OpenCV kernels (absolute differences, gray, a
    Laplacian) and area averaging; the flow cues are computed at twice the block resolution
    from area-averaged sampling positions.

    Args:
        f0, f1: (H, W, 3) uint8 input frames.
        flow01, flow10: (H, W, 2) float32 classical flows.
        map0, map1, w0, w1: the output of :func:`warp_to_time`.
        t: the time.
        block: block size in pixels.
        halves: :func:`half_frames` of these frames, if already computed.

    Returns:
        (N_FEATURES, H // block, W // block) float32 (at least 1x1), each roughly in [0, 4]:
        log(1 + forward-backward inconsistency) for frame 0 and 1, mean |w0 - w1| / 32, mean
        (w0 - w1)^2 / 1024, mean |Laplacian of gray| of each warp / 32, the fraction of
        samples outside frame 0 and 1, |flow to frame 0| / 8, mean |w0 - f0| / 32,
        mean |w1 - f1| / 32, and t.
    """
    import cv2

    h, w = f0.shape[:2]
    size = (max(1, w // block), max(1, h // block))
    fine = (2 * size[0], 2 * size[1])
    # Cues are averaged over whole blocks only (the last w % block columns and h % block rows
    # are left out): an integer ratio takes OpenCV's fast area path.
    ch, cw = min(h, size[1] * block), min(w, size[0] * block)

    def pool(img: np.ndarray, to: tuple[int, int] = size) -> np.ndarray:
        return cv2.resize(img[:ch, :cw], to, interpolation=cv2.INTER_AREA)

    def pool_rgb(img: np.ndarray) -> np.ndarray:
        return pool(img).astype(np.float32).reshape(size[1], size[0], -1).mean(2)

    out = np.empty((N_FEATURES, size[1], size[0]), np.float32)
    # Flow cues at twice the block resolution: flow01 read where frame 0 is sampled should
    # carry that point to where frame 1 is sampled (and flow10 back).
    p0, p1 = pool(map0, fine), pool(map1, fine)
    step = p1 - p0
    a0 = cv2.remap(flow01, p0, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    b1 = cv2.remap(flow10, p1, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    e0 = np.log1p(cv2.magnitude(*cv2.split(cv2.subtract(a0, step))))
    e1 = np.log1p(cv2.magnitude(*cv2.split(cv2.add(b1, step))))

    def outside(m: np.ndarray) -> np.ndarray:
        mx, my = m[..., 0], m[..., 1]
        return ((mx < 0) | (mx > w - 1) | (my < 0) | (my > h - 1)).astype(np.float32)

    def small(x: np.ndarray) -> np.ndarray:
        return cv2.resize(x, size, interpolation=cv2.INTER_AREA)

    out[0], out[1] = small(e0), small(e1)
    out[6] = small(outside(p0))
    out[7] = small(outside(p1))
    sx, sy = cw / fine[0], ch / fine[1]
    centre = pixel_grid(fine[1], fine[0]) * np.array([sx, sy], np.float32) + np.array(
        [(sx - 1) / 2, (sy - 1) / 2], np.float32)
    out[8] = small(cv2.magnitude(*cv2.split(cv2.subtract(p0, centre)))) / 8
    # Image cues, 8-bit, on the frames averaged over 2x2 pixels (a quarter of the work; the
    # sharpness cue then measures detail at half resolution).
    x0, x1, g0, g1 = halves if halves is not None else half_frames(w0, w1, f0, f1, block)

    def hpool(img: np.ndarray) -> np.ndarray:
        return cv2.resize(img, size, interpolation=cv2.INTER_AREA)

    def hpool_rgb(img: np.ndarray) -> np.ndarray:
        return hpool(img).astype(np.float32).reshape(size[1], size[0], -1).mean(2)

    d = cv2.absdiff(x0, x1)
    out[2] = hpool_rgb(d) / 32
    out[3] = hpool_rgb(cv2.multiply(d, d, dtype=cv2.CV_16U)) / 1024
    for k, img in ((4, x0), (5, x1)):
        lap = cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_16S)
        out[k] = hpool(cv2.convertScaleAbs(lap)).astype(np.float32) / 32
    out[9] = hpool_rgb(cv2.absdiff(x0, g0)) / 32
    out[10] = hpool_rgb(cv2.absdiff(x1, g1)) / 32
    out[11] = t
    return out


def extra_candidates(
    f0: np.ndarray, f1: np.ndarray, flow10: np.ndarray, w0: np.ndarray, w1: np.ndarray,
    t: float, block: int, halves: tuple[np.ndarray, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two more candidate frames at time t, at half resolution, and their per-block cues.

    The shipped pair (:func:`warp_to_time`) mixes both flows; where one of them is wrong (at
    occlusions) both warps inherit part of the error. These candidates use the flow from frame
    1 alone, assuming linear motion: frame 0 sampled at p + t F10(p) and frame 1 at
    p - (1 - t) F10(p). They are made from the 2x2-averaged frames (a quarter of the work, and
    softer), cropped to whole blocks like the cues.

    Args:
        f0, f1: (H, W, 3) uint8 input frames.
        flow10: (H, W, 2) float32 classical flow from frame 1 to frame 0.
        w0, w1: the warps of :func:`warp_to_time`.
        t: the time.
        block: block size in pixels (even sizes keep the half resolution whole).
        halves: :func:`half_frames` of these frames, if already computed.

    Returns:
        c2, c3: (ch // 2, cw // 2, 3) uint8 candidates, where ch, cw are H, W cropped to whole
        blocks; cues: (N_EXTRA_FEATURES, H // block, W // block) float32, each roughly in
        [0, 4]: mean |c2 - c3|, |c2 - w0|, |c3 - w1|, |c2 - w1|, |c3 - w0| (each / 32), mean
        |Laplacian of gray| of c2 and c3 / 32, the fraction of samples of c2 and c3 outside
        their frame.
    """
    import cv2

    h, w = f0.shape[:2]
    size = (max(1, w // block), max(1, h // block))
    ch, cw = min(h, size[1] * block), min(w, size[0] * block)
    x0, x1, g0, g1 = halves if halves is not None else half_frames(w0, w1, f0, f1, block)
    half = (x0.shape[1], x0.shape[0])
    # The flow at half resolution, in half-resolution pixels.
    fh = cv2.resize(flow10[:ch, :cw], half, interpolation=cv2.INTER_AREA)
    fh *= np.float32(half[0] / cw)
    grid = pixel_grid(half[1], half[0])
    m2 = cv2.scaleAdd(fh, float(t), grid)
    m3 = cv2.scaleAdd(fh, float(t) - 1.0, grid)
    c2 = cv2.remap(g0, m2, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    c3 = cv2.remap(g1, m3, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def pool_rgb(img: np.ndarray) -> np.ndarray:
        r = cv2.resize(img, size, interpolation=cv2.INTER_AREA).astype(np.float32)
        return r.reshape(size[1], size[0], -1).mean(2)

    def outside(m: np.ndarray) -> np.ndarray:
        mx, my = m[..., 0], m[..., 1]
        out = (mx < 0) | (mx > half[0] - 1) | (my < 0) | (my > half[1] - 1)
        return cv2.resize(out.astype(np.float32), size, interpolation=cv2.INTER_AREA)

    cues = np.empty((N_EXTRA_FEATURES, size[1], size[0]), np.float32)
    for k, (a, b) in enumerate(((c2, c3), (c2, x0), (c3, x1), (c2, x1), (c3, x0))):
        cues[k] = pool_rgb(cv2.absdiff(a, b)) / 32
    for k, img in ((5, c2), (6, c3)):
        lap = cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_16S)
        cues[k] = cv2.resize(cv2.convertScaleAbs(lap), size,
                             interpolation=cv2.INTER_AREA).astype(np.float32) / 32
    cues[7], cues[8] = outside(m2), outside(m3)
    return c2, c3, cues


def fusion_inputs(
    f0: np.ndarray, f1: np.ndarray, flow01: np.ndarray, flow10: np.ndarray, t: float,
    block: int, candidates: int, grid: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None, np.ndarray]:
    """Everything the occlusion fusion needs for one time t, as training, the PyTorch model
    and the ONNX engine compute it.

    Args:
        f0, f1: (H, W, 3) uint8 frames; flow01, flow10: (H, W, 2) float32 classical flows.
        t: the time in (0, 1); block: block size in pixels.
        candidates: 2 (the two warps) or 4 (plus :func:`extra_candidates`).
        grid: optional cached :func:`pixel_grid` of this size.

    Returns:
        w0, w1: (H, W, 3) uint8 bicubic warps to time t; the extra pair (c2, c3) at half
        resolution, or None for 2 candidates; cues: (12 or 21, H // block, W // block) float32.
    """
    m0, m1, w0, w1 = warp_to_time(f0, f1, flow01, flow10, t, grid)
    halves = half_frames(w0, w1, f0, f1, block)
    cues = occlusion_features(f0, f1, flow01, flow10, m0, m1, w0, w1, t, block, halves)
    if candidates == 2:
        return w0, w1, None, cues
    c2, c3, more = extra_candidates(f0, f1, flow10, w0, w1, t, block, halves)
    return w0, w1, (c2, c3), np.concatenate([cues, more])
