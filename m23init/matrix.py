"""Weight matrices with the M23 spectrum (NumPy only).

A square ``n x n`` weight is ``W = Q B Q^T`` with ``Q`` a Haar-random orthogonal matrix and ``B``
block diagonal with the rotation-scaling blocks ``[[a, -b], [b, a]]`` of the tiled spectrum
(:func:`m23init.spectrum.tile_spectrum`); ``W`` is similar to ``B``, so its eigenvalues are exactly
the tiled spectrum, and it is normal, so its singular values are their moduli.

A rectangular ``(fan_out, fan_in)`` weight is ``W = U S V^T`` with ``U`` ``(fan_out, k)`` and ``V``
``(fan_in, k)`` Haar-random with orthonormal columns, ``k = min(fan_out, fan_in)``, and ``S`` the
moduli of the tiled spectrum of size ``k``: its singular values come from the spectrum.

Two scales:

* ``"norm"`` (default): the singular values are scaled so that ``sum(s**2) = gain**2 * fan_in``,
  hence ``E ||W x||^2 = gain**2 ||x||^2`` for isotropic ``x`` (``E x x^T = c I``).
* ``"literal"``: the write-up's scale, spectral radius (largest singular value)
  ``gain * sqrt(2 / fan_in)``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from m23init.spectrum import (
    _check_positive_int,
    _check_root_index,
    m23_eigenvalues,
    tile_spectrum,
)

__all__ = [
    "SCALES",
    "block_diagonal",
    "calculate_gain",
    "haar_orthonormal",
    "mgi_init_stable",
    "scaled_spectrum",
]

SCALES: tuple[str, ...] = ("norm", "literal")
"""The accepted values of the ``scale`` argument."""


def _check_scale(scale: object) -> str:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    return str(scale)


def _check_gain(gain: object) -> float:
    if isinstance(gain, bool) or not isinstance(gain, numbers.Real):
        raise ValueError(f"gain must be a real number, got {gain!r}")
    value = float(gain)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"gain must be finite and >= 0, got {gain!r}")
    return value


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity, with the values of ``torch.nn.init``.

    ================= ====================================
    nonlinearity      gain
    ================= ====================================
    linear, conv*,    1
    sigmoid
    tanh              5/3
    relu              sqrt(2)
    leaky_relu        sqrt(2 / (1 + negative_slope**2))
    selu              3/4
    ================= ====================================

    Args:
        nonlinearity: the name of the nonlinearity, as in ``torch.nn.init.calculate_gain``.
        param: the negative slope of ``leaky_relu`` (default 0.01); ignored otherwise.

    Returns:
        The gain.

    Raises:
        ValueError: on an unknown ``nonlinearity`` or a non-numeric ``param``.
    """
    linear = {
        "linear",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
        "sigmoid",
    }
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, bool) or not isinstance(param, numbers.Real):
            raise ValueError(f"param must be a number for leaky_relu, got {param!r}")
        else:
            slope = float(param)
        return math.sqrt(2.0 / (1.0 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4.0
    raise ValueError(f"nonlinearity {nonlinearity!r} is not supported")


def scaled_spectrum(
    size: int,
    *,
    fan_in: int,
    scale: str = "norm",
    gain: float = 1.0,
    root_index: int = 0,
) -> np.ndarray:
    """The tiled M23 spectrum of an ``size x size`` block matrix, scaled for ``scale``.

    Args:
        size: number of values (``n`` for an ``n x n`` matrix, ``k = min`` of the dimensions for
            the singular values of a rectangular one).
        fan_in: the fan-in the scale refers to (``sqrt(2 / fan_in)`` for ``"literal"``,
            ``sum(|values|**2) = gain**2 * fan_in`` for ``"norm"``).
        scale: ``"norm"`` or ``"literal"``.
        gain: non-negative multiplier (of the spectral radius for ``"literal"``, of the norm for
            ``"norm"``).
        root_index: which root of the Elkies polynomial to use, 0 to 3.

    Returns:
        complex128 array of shape ``(size,)``.

    Raises:
        ValueError: on a bad ``size``, ``fan_in``, ``scale``, ``gain`` or ``root_index``.
    """
    size = _check_positive_int("size", size)
    fan_in = _check_positive_int("fan_in", fan_in)
    scale = _check_scale(scale)
    gain = _check_gain(gain)
    values = tile_spectrum(m23_eigenvalues(root_index), size)
    moduli = np.abs(values)
    if scale == "literal":
        factor = gain * math.sqrt(2.0 / fan_in) / moduli.max()
    else:
        factor = gain * math.sqrt(fan_in / float(np.sum(moduli**2)))
    return values * factor


def block_diagonal(values: np.ndarray) -> np.ndarray:
    """The real block-diagonal matrix whose eigenvalues are a tiled spectrum.

    Args:
        values: complex array of shape ``(n,)`` laid out as by
            :func:`m23init.spectrum.tile_spectrum`: conjugate pairs at ``(2i, 2i + 1)`` and, for
            odd ``n``, a real last entry.

    Returns:
        float64 array of shape ``(n, n)`` with blocks ``[[a, -b], [b, a]]`` for
        ``a + bi = values[2i]`` and the real last entry on the diagonal.
    """
    values = np.asarray(values, dtype=np.complex128).ravel()
    n = values.size
    pairs = n // 2
    lam = values[0 : 2 * pairs : 2]
    out = np.zeros((n, n), dtype=np.float64)
    even = 2 * np.arange(pairs)
    out[even, even] = lam.real
    out[even + 1, even + 1] = lam.real
    out[even, even + 1] = -lam.imag
    out[even + 1, even] = lam.imag
    if n % 2:
        out[-1, -1] = values[-1].real
    return out


def haar_orthonormal(rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    """Haar-random ``(rows, cols)`` matrix with orthonormal columns (``rows >= cols``).

    QR of a Gaussian matrix, with the signs of ``diag(R)`` moved into ``Q`` so that the result
    is uniformly distributed (Mezzadri, arXiv:math-ph/0609050).

    Args:
        rows: number of rows.
        cols: number of columns, at most ``rows``.
        rng: the NumPy generator to draw from.

    Returns:
        float64 array of shape ``(rows, cols)``.
    """
    if cols > rows:
        raise ValueError(f"cols ({cols}) must not exceed rows ({rows})")
    q, r = np.linalg.qr(rng.standard_normal((rows, cols)))
    signs = np.sign(np.diag(r))
    signs[signs == 0] = 1.0
    return q * signs


def _check_matrix_shape(matrix_shape: object) -> tuple[int, int]:
    """Returns ``(fan_out, fan_in)``, or raises ValueError naming ``matrix_shape``."""
    if not isinstance(matrix_shape, (tuple, list)) or len(matrix_shape) != 2:
        raise ValueError(f"matrix_shape must be 2-D (fan_out, fan_in), got {matrix_shape!r}")
    dims = []
    for d in matrix_shape:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral) or int(d) <= 0:
            raise ValueError(f"matrix_shape must hold two positive integers, got {matrix_shape!r}")
        dims.append(int(d))
    return dims[0], dims[1]


def mgi_init_stable(
    matrix_shape: tuple[int, int],
    *,
    scale: str = "norm",
    gain: float = 1.0,
    root_index: int = 0,
    seed: int = 0,
) -> np.ndarray:
    """A weight matrix with the M23 spectrum (the NumPy reference implementation).

    Square shapes get ``Q B Q^T`` (eigenvalues = the tiled spectrum), other shapes ``U S V^T``
    (singular values = its moduli); see the module docstring.

    Args:
        matrix_shape: ``(fan_out, fan_in)``.
        scale: ``"norm"`` (``E ||W x||^2 = gain**2 ||x||^2``) or ``"literal"`` (spectral radius
            ``gain * sqrt(2 / fan_in)``, as in the write-up).
        gain: non-negative multiplier, e.g. ``calculate_gain("relu")``.
        root_index: which root of the Elkies polynomial to use, 0 to 3.
        seed: seed of the ``np.random.default_rng`` that draws the bases (the global NumPy RNG is
            never used).

    Returns:
        float32 array of shape ``(fan_out, fan_in)``.

    Raises:
        ValueError: on a shape that is not two positive integers, or a bad ``scale``, ``gain``
            or ``root_index``.
    """
    fan_out, fan_in = _check_matrix_shape(matrix_shape)
    scale = _check_scale(scale)
    gain = _check_gain(gain)
    root_index = _check_root_index(root_index)
    rng = np.random.default_rng(seed)
    k = min(fan_out, fan_in)
    values = scaled_spectrum(k, fan_in=fan_in, scale=scale, gain=gain, root_index=root_index)
    if fan_out == fan_in:
        q = haar_orthonormal(k, k, rng)
        weight = (q @ block_diagonal(values)) @ q.T
    else:
        u = haar_orthonormal(fan_out, k, rng)
        v = haar_orthonormal(fan_in, k, rng)
        weight = (u * np.abs(values)) @ v.T
    return weight.astype(np.float32)
