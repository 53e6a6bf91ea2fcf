"""MATLAB ``imresize`` (bicubic) in NumPy, as the super-resolution literature uses it.

The low-resolution inputs of the SR benchmarks (Set5, Set14, ...) are made with MATLAB's
``imresize(img, 1/scale, 'bicubic')``: a cubic convolution kernel with ``a = -0.5``, widened by
``1/scale`` when shrinking (antialiasing), with MATLAB's own pixel-centre convention and
symmetric mirroring at the borders. OpenCV's ``INTER_CUBIC`` (``a = -0.75``, no antialiasing)
and PyTorch's ``bicubic`` differ enough to move published PSNR by tenths of a dB, hence this
module.

Each axis is resized by one dense ``(out, in)`` weight matrix built from MATLAB's
``contributions`` (indices and weights per output sample, mirrored indices folded back into
range), applied with a matrix product; the two axes are separable, so the result is
``W_h @ img @ W_w^T`` per channel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["cubic", "resize_weights", "imresize", "imresize_u8"]

KERNEL_WIDTH = 4.0  # support of the cubic kernel, in input pixels


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with ``a = -0.5`` (MATLAB's ``cubic``).

    Args:
        x: distances in pixels, any shape.

    Returns:
        Kernel values, same shape, float64; zero for ``|x| >= 2``.
    """
    ax = np.abs(np.asarray(x, dtype=np.float64))
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


def resize_weights(
    in_length: int, out_length: int, scale: float, antialiasing: bool = True
) -> np.ndarray:
    """The ``(out_length, in_length)`` matrix that resizes one axis (MATLAB ``contributions``).

    Output sample ``x`` (1-based) sits at input coordinate ``u = x / scale + (1 - 1 / scale) / 2``;
    it takes ``ceil(width) + 2`` input samples from ``floor(u - width / 2)`` on, weighted by the
    kernel (stretched by ``1 / scale`` when ``scale < 1`` and antialiasing), normalized to sum to
    one; indices outside ``1..in_length`` are mirrored symmetrically (``..., 2, 1, 1, 2, ...``).

    Args:
        in_length: input samples along the axis (>= 1).
        out_length: output samples along the axis (>= 1).
        scale: the output/input ratio MATLAB uses (the ``scale`` argument, or ``out / in`` when
            an output size is given).
        antialiasing: widen the kernel when shrinking (MATLAB's default).

    Returns:
        float64 weights; each row sums to one.
    """
    if in_length < 1 or out_length < 1:
        raise ValueError(f"lengths must be positive, got {in_length} -> {out_length}")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    width = KERNEL_WIDTH
    shrink = scale < 1 and antialiasing
    if shrink:
        width = KERNEL_WIDTH / scale
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]  # 1-based
    dist = u[:, None] - idx
    w = scale * cubic(scale * dist) if shrink else cubic(dist)
    w /= w.sum(axis=1, keepdims=True)
    # Symmetric mirroring, MATLAB's aux = [1:in, in:-1:1] indexed modulo 2 * in.
    period = 2 * in_length
    m = np.mod(idx.astype(np.int64) - 1, period)
    src = np.where(m < in_length, m, period - 1 - m)
    mat = np.zeros((out_length, in_length), dtype=np.float64)
    rows = np.broadcast_to(np.arange(out_length)[:, None], src.shape)
    np.add.at(mat, (rows.ravel(), src.ravel()), w.ravel())
    return mat


def _out_shape(
    shape: tuple[int, int], scale: float | Sequence[float] | None,
    output_shape: Sequence[int] | None,
) -> tuple[tuple[int, int], tuple[float, float]]:
    h, w = shape
    if output_shape is not None:
        if len(output_shape) != 2 or min(output_shape) < 1:
            raise ValueError(f"output_shape must be two positive sizes, got {output_shape}")
        oh, ow = int(output_shape[0]), int(output_shape[1])
        return (oh, ow), (oh / h, ow / w)
    if scale is None:
        raise ValueError("give scale or output_shape")
    sh, sw = (float(scale), float(scale)) if np.isscalar(scale) else tuple(map(float, scale))  # type: ignore[arg-type]
    if not (sh > 0 and sw > 0):
        raise ValueError(f"scale must be positive, got {scale}")
    # MATLAB: ceil(scale * size), guarding against 0.5 * 3 = 1.5000000000000002-style noise.
    oh = max(1, int(math.ceil(sh * h - 1e-9)))
    ow = max(1, int(math.ceil(sw * w - 1e-9)))
    return (oh, ow), (sh, sw)


def imresize(
    img: np.ndarray,
    scale: float | Sequence[float] | None = None,
    output_shape: Sequence[int] | None = None,
    antialiasing: bool = True,
) -> np.ndarray:
    """Bicubic resize with MATLAB ``imresize`` semantics.

    Args:
        img: (H, W) or (H, W, C) image, any numeric dtype; usually on a 0..255 scale.
        scale: one factor for both axes, or (factor_h, factor_w); the output size is
            ``ceil(scale * size)``.
        output_shape: (out_h, out_w); overrides ``scale`` (the factors become out / in).
        antialiasing: widen the kernel when shrinking (MATLAB's default, True).

    Returns:
        float64 array of shape (out_h, out_w[, C]), not rounded or clipped (round and clip to
        uint8 as the literature does: ``np.clip(np.round(x), 0, 255).astype(np.uint8)``).

    Raises:
        ValueError: on an empty image, a bad scale or output shape.
    """
    a = np.asarray(img, dtype=np.float64)
    if a.ndim not in (2, 3) or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {a.shape}")
    (oh, ow), (sh, sw) = _out_shape((a.shape[0], a.shape[1]), scale, output_shape)
    h, w = a.shape[:2]
    out = a
    # MATLAB resizes the axis with the smaller factor first (fewer samples to carry).
    order = (0, 1) if sh <= sw else (1, 0)
    for axis in order:
        if axis == 0 and (oh != h or sh != 1.0):
            mat = resize_weights(h, oh, sh, antialiasing)
            out = np.tensordot(mat, out, axes=([1], [0]))
        elif axis == 1 and (ow != w or sw != 1.0):
            mat = resize_weights(w, ow, sw, antialiasing)
            out = np.moveaxis(np.tensordot(mat, out, axes=([1], [1])), 0, 1)
    return np.ascontiguousarray(out)


def imresize_u8(img: np.ndarray, scale: float | None = None,
                output_shape: Sequence[int] | None = None) -> np.ndarray:
    """:func:`imresize` rounded and clipped to uint8 (how the benchmarks store LR images).

    Args:
        img: (H, W) or (H, W, C) image on a 0..255 scale.
        scale: resize factor (see :func:`imresize`).
        output_shape: (out_h, out_w) instead of ``scale``.

    Returns:
        uint8 array of shape (out_h, out_w[, C]).
    """
    return np.clip(np.round(imresize(img, scale, output_shape)), 0, 255).astype(np.uint8)
