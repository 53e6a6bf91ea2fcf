"""JAX integration: an M23-spectrum initializer with the signature of ``jax.nn.initializers``.

:func:`m23_jax` returns ``init(key, shape, dtype=None) -> Array``, usable wherever JAX expects an
initializer, e.g. as a Flax ``kernel_init``::

    import flax.linen as nn
    from m23init import m23_jax

    nn.Dense(256, kernel_init=m23_jax(gain=2**0.5))
    nn.Conv(64, (3, 3), kernel_init=m23_jax(conv_mode="delta"))

Kernel layouts (those of Flax and ``jax.lax.conv_general_dilated`` with ``"HWIO"``):

* dense ``(in, out)``: ``y = x @ kernel``, so the forward matrix is ``kernel.T``;
* convolution ``(*k, in / groups, out)`` (HWIO for 2-D, also 1-D and 3-D), the layout of Flax's
  ``Conv`` (``feature_group_count=groups``) and ``ConvTranspose`` (``transpose_kernel=False``);
* with ``transposed=True``, ``(*k, out / groups, in)``, the layout of a transposed-convolution
  kernel that stores the output channels first (Flax ``ConvTranspose(transpose_kernel=True)``,
  Keras ``Conv*Transpose``; with groups, group ``g`` maps input block ``g`` of the last axis to
  output block ``g``, as PyTorch's ``ConvTranspose`` weight ``(in, out / groups, *k)``).

The numbers are those of :func:`m23init.m23_` (PyTorch) and :func:`m23init.mgi_init_stable`
(NumPy): per group, the forward matrix ``(out / groups, in / groups * prod(k))`` (``"flatten"``)
or the centre-tap matrix ``(out / groups, in / groups)`` (``"delta"``, zeros elsewhere) is
``Q B Q^T`` if square (its eigenvalues are the tiled M23 spectrum) and ``U S V^T`` otherwise (its
singular values are their moduli), scaled by ``scale`` (``"norm"``: ``sum(s**2) = gain**2 *
in / groups``; ``"literal"``: spectral radius ``gain * sqrt(2 / columns)``). The spectrum comes
from the NumPy core; the Haar bases are drawn from the ``key`` with ``jax.random`` and
``jnp.linalg.qr`` (products at ``Precision.HIGHEST``, so GPUs and TPUs keep the spectrum to
float32 accuracy), so the weight is a function of the key (the same for the same key, different
across keys) and is built on JAX's default device. The construction is one jitted function,
compiled once per kernel layout, mode and dtype; ``init`` can itself be traced under
``jax.jit``. The bases differ from those of the PyTorch and NumPy builders (other random number
generators); the spectrum is the same.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from m23init.matrix import _check_gain, _check_scale, scaled_spectrum
from m23init.spectrum import _check_root_index

try:
    import jax
    import jax.numpy as jnp
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "m23init's JAX initializer needs JAX: pip install 'm23-spectrum[jax]' (or pip install jax)"
    ) from exc

__all__ = ["CONV_MODES", "m23_jax"]

CONV_MODES: tuple[str, ...] = ("flatten", "delta")
"""The accepted values of ``conv_mode`` (as in :mod:`m23init.torch_init`)."""

_HIGHEST = jax.lax.Precision.HIGHEST  # full float32 products on GPU/TPU too


class _Layout(NamedTuple):
    """How a kernel shape splits into per-group matrices (see :func:`_layout`)."""

    kernel: tuple[int, ...]  # spatial kernel size, () for a dense kernel
    groups: int
    rows: int  # out / groups
    in_g: int  # in / groups
    cols: int  # in_g * prod(kernel) for "flatten", in_g for "delta"


def _check_conv_mode(conv_mode: object) -> str:
    if conv_mode not in CONV_MODES:
        raise ValueError(f"conv_mode must be one of {CONV_MODES}, got {conv_mode!r}")
    return str(conv_mode)


def _check_groups(groups: object) -> int:
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups <= 0:
        raise ValueError(f"groups must be a positive integer, got {groups!r}")
    return int(groups)


def _layout(shape: object, *, groups: int, transposed: bool, conv_mode: str) -> _Layout:
    """Splits ``(*k, in / groups, out)`` (or ``(*k, out / groups, in)`` if transposed) into groups.

    Raises:
        ValueError: on a shape that is not at least two positive integers, or whose grouped
            axis (the last) is not divisible by ``groups``.
    """
    if not isinstance(shape, Sequence) or len(shape) < 2:
        raise ValueError(f"shape must have at least 2 dimensions, got {shape!r}")
    dims: list[int] = []
    for d in shape:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral) or int(d) <= 0:
            raise ValueError(f"shape must hold positive integers, got {shape!r}")
        dims.append(int(d))
    *kernel, second, last = dims
    if last % groups:
        raise ValueError(f"groups ({groups}) must divide the last dimension of shape {shape!r}")
    rows, in_g = (second, last // groups) if transposed else (last // groups, second)
    cols = in_g * math.prod(kernel) if conv_mode == "flatten" else in_g
    return _Layout(tuple(kernel), groups, rows, in_g, cols)


def _haar(gaussian: jax.Array) -> jax.Array:
    """Haar-random orthonormal columns from a Gaussian ``(..., rows, k)``, ``rows >= k``.

    QR with the signs of ``diag(R)`` moved into ``Q`` (Mezzadri, arXiv:math-ph/0609050).
    """
    q, r = jnp.linalg.qr(gaussian, mode="reduced")
    signs = jnp.where(jnp.diagonal(r, axis1=-2, axis2=-1) >= 0, 1.0, -1.0).astype(q.dtype)
    return q * signs[..., None, :]


def _matrices(key: jax.Array, layout: _Layout, spectrum: jax.Array, dtype: Any) -> jax.Array:
    """The ``groups`` forward matrices, ``(groups, rows, cols)`` in ``dtype``.

    ``spectrum`` is ``(k, 3)``: real part, imaginary part and modulus of the tiled, scaled
    values (:func:`m23init.matrix.scaled_spectrum`), ``k = min(rows, cols)``. Square:
    ``Q B Q^T`` with ``B`` the 2 x 2 blocks (computed as the column pairs of ``Q`` mixed by the
    blocks, then one product). Otherwise ``U diag(moduli) V^T``. One Gaussian draw from ``key``
    holds all bases.
    """
    groups, rows, cols = layout.groups, layout.rows, layout.cols
    k = min(rows, cols)
    spectrum = spectrum.astype(dtype)
    if rows == cols:
        q = _haar(jax.random.normal(key, (groups, k, k), dtype))
        pairs = k // 2
        re, im = spectrum[0 : 2 * pairs : 2, 0], spectrum[0 : 2 * pairs : 2, 1]
        q_even, q_odd = q[..., 0 : 2 * pairs : 2], q[..., 1 : 2 * pairs : 2]
        mixed = jnp.stack([q_even * re + q_odd * im, q_odd * re - q_even * im], axis=-1)
        mixed = mixed.reshape(groups, k, 2 * pairs)
        if k % 2:  # the real last entry
            mixed = jnp.concatenate([mixed, q[..., -1:] * spectrum[-1, 0]], axis=-1)
        return jnp.matmul(mixed, jnp.swapaxes(q, -1, -2), precision=_HIGHEST)
    gaussian = jax.random.normal(key, (groups, rows + cols, k), dtype)
    u, v = _haar(gaussian[:, :rows]), _haar(gaussian[:, rows:])
    return jnp.matmul(u * spectrum[:, 2], jnp.swapaxes(v, -1, -2), precision=_HIGHEST)


def _to_kernel(
    matrices: jax.Array, layout: _Layout, *, conv_mode: str, transposed: bool
) -> jax.Array:
    """``(groups, rows, cols)`` matrices to the kernel ``(*k, in_g, out)`` or ``(*k, rows, in)``.

    The columns of a ``"flatten"`` matrix are ordered ``(in_g, *k)``; a ``"delta"`` matrix goes to
    the centre tap ``k // 2`` of every spatial axis, zeros elsewhere.
    """
    kernel, groups, rows, in_g = layout.kernel, layout.groups, layout.rows, layout.in_g
    nk = len(kernel)
    if conv_mode == "flatten" or nk == 0:
        blocks = matrices.reshape(groups, rows, in_g, *kernel)
    else:
        blocks = matrices.reshape(groups, rows, in_g, *(1,) * nk)
        widths = [(0, 0)] * 3 + [(size // 2, size - size // 2 - 1) for size in kernel]
        blocks = jnp.pad(blocks, widths)
    spatial = tuple(range(3, 3 + nk))
    if transposed:  # (*k, rows, groups, in_g) -> (*k, rows, in)
        return jnp.transpose(blocks, (*spatial, 1, 0, 2)).reshape(*kernel, rows, groups * in_g)
    return jnp.transpose(blocks, (*spatial, 2, 0, 1)).reshape(*kernel, in_g, groups * rows)


@functools.partial(jax.jit, static_argnames=("layout", "conv_mode", "transposed", "dtype"))
def _kernel(
    key: jax.Array,
    spectrum: jax.Array,
    *,
    layout: _Layout,
    conv_mode: str,
    transposed: bool,
    dtype: Any,
) -> jax.Array:
    """The kernel, compiled once per layout, mode and dtype (JAX's jit cache).

    Built in float32 (float64 for float64) and cast to ``dtype``.
    """
    compute = jnp.promote_types(dtype, jnp.float32)
    matrices = _matrices(key, layout, spectrum, compute)
    weight = _to_kernel(matrices, layout, conv_mode=conv_mode, transposed=transposed)
    return weight.astype(dtype)


def m23_jax(
    *,
    scale: str = "norm",
    gain: float = 1.0,
    conv_mode: str = "flatten",
    root_index: int = 0,
    groups: int = 1,
    transposed: bool = False,
    dtype: Any = None,
) -> jax.nn.initializers.Initializer:
    """An M23-spectrum initializer ``init(key, shape, dtype=None)`` like ``jax.nn.initializers``.

    Args:
        scale: ``"norm"`` (``sum(s**2) = gain**2 * in / groups``, energy-preserving) or
            ``"literal"`` (spectral radius ``gain * sqrt(2 / columns)``, the write-up's scale).
        gain: non-negative multiplier, e.g. ``m23init.calculate_gain("relu")``.
        conv_mode: ``"flatten"`` (the full forward matrix) or ``"delta"`` (centre tap only), for
            kernels with spatial axes.
        root_index: which root of the Elkies polynomial to use, 0 to 3.
        groups: number of groups (Flax ``feature_group_count``); the last axis is split into
            ``groups`` blocks, each with its own basis.
        transposed: the kernel is ``(*k, out / groups, in)`` instead of ``(*k, in / groups, out)``.
        dtype: the default dtype of the weights (``None``: JAX's default float, float32 unless
            ``jax_enable_x64``).

    Returns:
        ``init(key, shape, dtype=None, out_sharding=None) -> Array``: ``key`` a JAX PRNG key,
        ``shape`` ``(in, out)``, ``(*k, in / groups, out)`` or (transposed)
        ``(*k, out / groups, in)``, a real floating ``dtype`` (float16 and bfloat16 are built in
        float32 and rounded). Traceable under ``jax.jit`` with ``shape`` and ``dtype`` static.
        ``out_sharding`` is not supported (as in ``jax.nn.initializers.orthogonal``).

    Raises:
        ValueError: on a bad ``scale``, ``gain``, ``conv_mode``, ``root_index`` or ``groups``
            here, and from ``init`` on a shape that is not at least two positive integers, a
            last axis not divisible by ``groups``, or a dtype that is not real floating.
    """
    scale = _check_scale(scale)
    gain = _check_gain(gain)
    conv_mode = _check_conv_mode(conv_mode)
    root_index = _check_root_index(root_index)
    groups = _check_groups(groups)
    transposed = bool(transposed)
    default_dtype = dtype

    def init(
        key: jax.Array,
        shape: Sequence[int],
        dtype: Any = default_dtype,
        out_sharding: Any = None,
    ) -> jax.Array:
        if out_sharding is not None:
            raise NotImplementedError("m23_jax does not support out_sharding")
        dtype = jnp.dtype(jnp.result_type(float) if dtype is None else dtype)
        if not jnp.issubdtype(dtype, jnp.floating):
            raise ValueError(f"dtype must be a real floating dtype, got {dtype}")
        layout = _layout(
            tuple(shape) if isinstance(shape, Sequence) else shape,
            groups=groups,
            transposed=transposed,
            conv_mode=conv_mode,
        )
        k = min(layout.rows, layout.cols)
        fan_in = layout.cols if scale == "literal" else layout.in_g
        values = scaled_spectrum(k, fan_in=fan_in, scale=scale, gain=gain, root_index=root_index)
        spectrum = np.stack([values.real, values.imag, np.abs(values)], axis=-1)  # (k, 3)
        return _kernel(
            key,
            spectrum,
            layout=layout,
            conv_mode=conv_mode,
            transposed=transposed,
            dtype=dtype,
        )

    return init
