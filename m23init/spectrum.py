"""The M23 spectrum: 23 complex eigenvalues from the Elkies polynomial (NumPy only).

The construction of the write-up:

1. The four roots ``g`` of the Elkies polynomial ``g^4 + g^3 + 9 g^2 - 10 g + 8``, in the order
   of ``np.roots([1, 1, 9, -10, 8])``. Root 0 is ``g = -1.0495 + 3.0736i``.
2. For the chosen ``g``, the roots of three factor polynomials with the multiplicities

   ========================================  ==========  ============
   polynomial                                roots       multiplicity
   ========================================  ==========  ============
   ``P2(z) = z^2 - g z + g^2``               2           2
   ``P3(z) = z^3 + g z - 1``                 3           1
   ``P4(z) = z^4 + g z^3 - g^2 z^2 + z - g``  4           4
   ========================================  ==========  ============

   give ``2*2 + 3 + 4*4 = 23`` complex eigenvalues. With root 0 the ratio of the largest to the
   smallest modulus is 17.59 (the write-up's "condition number 17.6").
3. To fill an ``n x n`` real matrix the 23 values are *tiled*: ``n // 2`` rotation-scaling blocks
   ``[[a, -b], [b, a]]`` cycle through the 23 values, and each block contributes the conjugate
   pair ``a +- bi``. For odd ``n`` one real entry is added: the **modulus** of the next value in the
   cycle (so that every singular value of the matrix is one of the 23 moduli, and the spectral
   radius is not exceeded).

The 23 unscaled values are computed once per root and cached (`functools.lru_cache`).
"""

from __future__ import annotations

import functools
import math
import numbers

import numpy as np

__all__ = [
    "ELKIES_COEFFICIENTS",
    "FACTOR_MULTIPLICITIES",
    "NUM_EIGENVALUES",
    "condition_number",
    "elkies_roots",
    "factor_polynomials",
    "generate_m23_stable_spectrum",
    "m23_eigenvalues",
    "tile_spectrum",
]

ELKIES_COEFFICIENTS: tuple[int, ...] = (1, 1, 9, -10, 8)
"""Coefficients of ``g^4 + g^3 + 9 g^2 - 10 g + 8``, highest degree first."""

FACTOR_MULTIPLICITIES: tuple[int, ...] = (2, 1, 4)
"""How often the roots of ``P2``, ``P3`` and ``P4`` enter the spectrum."""

NUM_EIGENVALUES = 23
"""``2 * 2 + 3 * 1 + 4 * 4``."""


def _check_positive_int(name: str, value: object) -> int:
    """Returns ``value`` as an int, or raises ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_root_index(root_index: object) -> int:
    """Returns ``root_index`` as an int in ``[0, 4)``, or raises ValueError."""
    if isinstance(root_index, bool) or not isinstance(root_index, numbers.Integral):
        raise ValueError(f"root_index must be 0, 1, 2 or 3, got {root_index!r}")
    index = int(root_index)
    if not 0 <= index < 4:
        raise ValueError(f"root_index must be 0, 1, 2 or 3, got {root_index!r}")
    return index


def elkies_roots() -> np.ndarray:
    """The four complex roots of ``g^4 + g^3 + 9 g^2 - 10 g + 8``.

    Returns:
        complex128 array of shape ``(4,)`` in the order of ``np.roots``.
    """
    return np.roots(np.asarray(ELKIES_COEFFICIENTS, dtype=np.float64))


def factor_polynomials(g: complex) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coefficients (highest degree first) of ``P2``, ``P3`` and ``P4`` for a root ``g``.

    Args:
        g: a root of the Elkies polynomial.

    Returns:
        Three complex128 arrays of lengths 3, 4 and 5.
    """
    g = complex(g)
    p2 = np.array([1, -g, g * g], dtype=np.complex128)
    p3 = np.array([1, 0, g, -1], dtype=np.complex128)
    p4 = np.array([1, g, -g * g, 1, -g], dtype=np.complex128)
    return p2, p3, p4


@functools.lru_cache(maxsize=4)
def _m23_eigenvalues_cached(root_index: int) -> tuple[complex, ...]:
    """The 23 unscaled eigenvalues for one root, as an immutable tuple (cached)."""
    g = elkies_roots()[root_index]
    parts = [
        np.tile(np.roots(poly), count)
        for poly, count in zip(factor_polynomials(g), FACTOR_MULTIPLICITIES)
    ]
    values = np.concatenate(parts)
    assert values.shape == (NUM_EIGENVALUES,)
    return tuple(complex(v) for v in values)


def m23_eigenvalues(root_index: int = 0) -> np.ndarray:
    """The 23 unscaled eigenvalues: roots of ``P2`` twice, ``P3`` once, ``P4`` four times.

    The order is ``[P2 roots, P2 roots, P3 roots, P4 roots x 4]``, each group in the order of
    ``np.roots``; tiling cycles through the values in this order.

    Args:
        root_index: which root of the Elkies polynomial to use, 0 to 3.

    Returns:
        complex128 array of shape ``(23,)`` (a fresh copy; the cache is not exposed).
    """
    return np.array(_m23_eigenvalues_cached(_check_root_index(root_index)), dtype=np.complex128)


def condition_number(root_index: int = 0) -> float:
    """Ratio of the largest to the smallest modulus of the 23 eigenvalues (17.59 for root 0)."""
    moduli = np.abs(m23_eigenvalues(root_index))
    return float(moduli.max() / moduli.min())


def tile_spectrum(eigenvalues: np.ndarray, size: int) -> np.ndarray:
    """Eigenvalues of the ``size x size`` real block matrix built from ``eigenvalues``.

    Block ``i`` (``i < size // 2``) holds ``lam = eigenvalues[i % len(eigenvalues)]`` as
    ``[[lam.real, -lam.imag], [lam.imag, lam.real]]`` and so contributes ``lam`` and
    ``conj(lam)``. For odd ``size`` the last entry is the real number
    ``abs(eigenvalues[(size // 2) % len(eigenvalues)])``.

    Args:
        eigenvalues: complex values to cycle through, shape ``(m,)`` with ``m >= 1``.
        size: the matrix size ``n``.

    Returns:
        complex128 array of shape ``(size,)``: ``[lam_0, conj(lam_0), lam_1, conj(lam_1), ...]``
        followed by the real entry when ``size`` is odd.
    """
    size = _check_positive_int("size", size)
    values = np.asarray(eigenvalues, dtype=np.complex128).ravel()
    if values.size == 0:
        raise ValueError("eigenvalues must not be empty")
    pairs = size // 2
    lam = values[np.arange(pairs) % values.size]
    out = np.empty(size, dtype=np.complex128)
    out[0 : 2 * pairs : 2] = lam
    out[1 : 2 * pairs : 2] = np.conj(lam)
    if size % 2:
        out[-1] = abs(values[pairs % values.size])
    return out


def generate_m23_stable_spectrum(
    fan_in: int,
    size: int | None = None,
    root_index: int = 0,
    scale_factor: float = 1.0,
) -> np.ndarray:
    """The M23 eigenvalues scaled to spectral radius ``scale_factor * sqrt(2 / fan_in)``.

    This is the write-up's ("literal") scale. It shrinks activations quickly in deep ReLU
    networks; :func:`m23init.matrix.mgi_init_stable` defaults to a norm-preserving scale instead.

    Args:
        fan_in: number of inputs of the layer; sets the spectral radius ``sqrt(2 / fan_in)``.
        size: ``None`` for the 23 values themselves, or ``n`` for the ``n`` eigenvalues of an
            ``n x n`` real matrix (see :func:`tile_spectrum`).
        root_index: which root of the Elkies polynomial to use, 0 to 3.
        scale_factor: extra positive factor on the spectral radius.

    Returns:
        complex128 array of shape ``(23,)`` or ``(size,)`` whose largest modulus is exactly
        ``scale_factor * sqrt(2 / fan_in)``.

    Raises:
        ValueError: on a non-positive ``fan_in`` or ``size``, an unknown ``root_index`` or a
            negative or non-finite ``scale_factor``.
    """
    fan_in = _check_positive_int("fan_in", fan_in)
    if not math.isfinite(scale_factor) or scale_factor < 0:
        raise ValueError(f"scale_factor must be finite and >= 0, got {scale_factor!r}")
    values = m23_eigenvalues(root_index)
    if size is not None:
        values = tile_spectrum(values, size)
    radius = np.abs(values).max()
    return values * (scale_factor * math.sqrt(2.0 / fan_in) / radius)
