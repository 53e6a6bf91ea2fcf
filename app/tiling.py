"""Run an upscaler on overlapping tiles of a large frame (NumPy only).

Each tile is cut from the input with ``overlap`` extra pixels of context on every side that
has a neighbour, upscaled, and only its centre (the part that belongs to the tile) is kept. A
convolutional upscaler computes each output pixel from a bounded neighbourhood of the input
(its receptive field), so when ``overlap`` covers that neighbourhood every kept pixel is
computed from exactly the same input as in a whole-frame run: the result is seamless, equal
to the whole-frame output up to floating-point rounding, with no blending needed. The bundled
SR nets see at most 5 input pixels away (at most five 3x3 convolutions in a row), so the default
overlap of 16 leaves a wide margin.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["tiled", "tile_starts"]


def tile_starts(length: int, tile: int) -> list[tuple[int, int]]:
    """Split ``0..length`` into consecutive ``(start, stop)`` ranges of at most ``tile``.

    The ranges have nearly equal sizes (no thin last tile).
    """
    if length < 1 or tile < 1:
        raise ValueError(f"length and tile must be positive, got {length}, {tile}")
    n = -(-length // tile)
    edges = [round(i * length / n) for i in range(n + 1)]
    return [(edges[i], edges[i + 1]) for i in range(n)]


def tiled(
    fn: Callable[[np.ndarray], np.ndarray],
    img: np.ndarray,
    scale: int,
    tile: int,
    overlap: int = 16,
) -> np.ndarray:
    """Upscale ``img`` tile by tile.

    Args:
        fn: the upscaler, (h, w, C) -> (scale*h, scale*w, C') for any h, w (uint8 or float;
            the output keeps its dtype).
        img: (H, W, C) input.
        scale: the upscaling factor of ``fn``.
        tile: tile size in input pixels, without the overlap (>= 1); an image that fits in one
            tile is passed to ``fn`` whole.
        overlap: input pixels of context added on each inner side of a tile (>= 0).

    Returns:
        (scale*H, scale*W, C') array, as one call ``fn(img)`` would give.

    Raises:
        ValueError: bad arguments, or ``fn`` returning the wrong shape.
    """
    if img.ndim != 3 or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"expected an (H, W, C) image, got shape {img.shape}")
    if scale < 1 or tile < 1 or overlap < 0:
        raise ValueError(f"need scale >= 1, tile >= 1 and overlap >= 0; got {scale}, {tile}, "
                         f"{overlap}")
    h, w = img.shape[:2]
    if h <= tile and w <= tile:
        return _checked(fn, img, scale)
    out: np.ndarray | None = None
    for y0, y1 in tile_starts(h, tile):
        for x0, x1 in tile_starts(w, tile):
            a0, a1 = max(0, y0 - overlap), min(h, y1 + overlap)
            b0, b1 = max(0, x0 - overlap), min(w, x1 + overlap)
            up = _checked(fn, np.ascontiguousarray(img[a0:a1, b0:b1]), scale)
            if out is None:
                out = np.empty((h * scale, w * scale, up.shape[2]), dtype=up.dtype)
            oy, ox = (y0 - a0) * scale, (x0 - b0) * scale
            out[y0 * scale:y1 * scale, x0 * scale:x1 * scale] = \
                up[oy:oy + (y1 - y0) * scale, ox:ox + (x1 - x0) * scale]
    assert out is not None
    return out


def _checked(fn: Callable[[np.ndarray], np.ndarray], part: np.ndarray, scale: int) -> np.ndarray:
    up = fn(part)
    h, w = part.shape[:2]
    if up.ndim != 3 or up.shape[:2] != (h * scale, w * scale):
        raise ValueError(f"the upscaler returned {up.shape} for a {h}x{w} tile; expected "
                         f"({h * scale}, {w * scale}, C) for scale {scale}")
    return up
