"""Keras 3 integration: an M23-spectrum ``keras.initializers.Initializer``.

:class:`M23Keras` is a serializable initializer (``get_config``, registered as
``"m23init>M23Keras"`` so saved models load again) written with ``keras.ops`` and
``keras.random`` only, so it runs under the TensorFlow, JAX and PyTorch backends, on the
backend's device::

    import keras
    from m23init import M23Keras

    keras.layers.Dense(256, kernel_initializer=M23Keras(gain=2**0.5, seed=0))
    keras.layers.Conv2D(64, 3, kernel_initializer=M23Keras(conv_mode="delta", seed=1))

Kernel layouts (those of Keras): ``Dense`` ``(in, out)``; ``Conv1D/2D/3D`` ``(*k, in / groups,
filters)`` (pass the layer's ``groups``); ``Conv1D/2D/3DTranspose`` ``(*k, filters, in)`` (pass
``transposed=True``; with ``groups``, ``(*k, filters / groups, in)``, split along ``in``).

The numbers are those of :func:`m23init.m23_` (PyTorch) and :func:`m23init.m23_jax`: per group,
the forward matrix ``(out / groups, in / groups * prod(k))`` (``"flatten"``) or the centre-tap
matrix ``(out / groups, in / groups)`` (``"delta"``, zeros elsewhere) is ``Q B Q^T`` if square (its
eigenvalues are the tiled M23 spectrum) and ``U S V^T`` otherwise (its singular values are their
moduli), scaled by ``scale``. The spectrum comes from the NumPy core; the Haar bases come from
one ``keras.random.normal`` draw with the initializer's ``seed``, so they differ from those of
the other builders, while the spectrum is the same.

Seeds follow Keras's own random initializers: an ``int`` gives the same weight at every call (so
give each layer its own seed, or its own instance), ``None`` draws an int once from Python's
``random`` when the initializer is made (``keras.utils.set_random_seed`` makes that
reproducible), and a ``keras.random.SeedGenerator`` gives new bases at every call.
"""

from __future__ import annotations

import importlib.util
import math
import numbers
import random
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from m23init.matrix import _check_gain, _check_scale, scaled_spectrum
from m23init.spectrum import _check_root_index

try:
    import keras
    from keras import ops
except ImportError as exc:  # pragma: no cover - depends on the environment
    if importlib.util.find_spec("keras") is None:
        raise ImportError(
            "m23init's Keras initializer needs Keras 3: pip install 'm23-spectrum[keras]' "
            "(or pip install keras, and a backend: torch, jax or tensorflow)"
        ) from exc
    raise ImportError(
        f"Keras is installed but could not import its backend ({exc}); set KERAS_BACKEND to an "
        "installed backend (torch, jax or tensorflow) before keras is imported"
    ) from exc

__all__ = ["CONV_MODES", "M23Keras"]

CONV_MODES: tuple[str, ...] = ("flatten", "delta")
"""The accepted values of ``conv_mode`` (as in :mod:`m23init.torch_init`)."""


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


def _haar(gaussian: Any) -> Any:
    """Haar-random orthonormal columns from a Gaussian ``(..., rows, k)``, ``rows >= k``.

    QR with the signs of ``diag(R)`` moved into ``Q`` (Mezzadri, arXiv:math-ph/0609050).
    """
    q, r = ops.qr(gaussian, mode="reduced")
    diag = ops.diagonal(r, axis1=-2, axis2=-1)
    signs = ops.cast(ops.where(ops.greater_equal(diag, 0), 1.0, -1.0), q.dtype)
    return q * ops.expand_dims(signs, -2)


def _matrices(gaussian_seed: Any, layout: _Layout, values: np.ndarray, dtype: str) -> Any:
    """The ``groups`` forward matrices, ``(groups, rows, cols)`` in ``dtype``.

    Square: ``Q B Q^T`` with ``B`` the 2 x 2 blocks of ``values`` (computed as the column pairs of
    ``Q`` mixed by the blocks, then one product). Otherwise ``U diag(|values|) V^T``. One
    Gaussian draw holds all bases.
    """
    groups, rows, cols = layout.groups, layout.rows, layout.cols
    k = min(rows, cols)
    if rows == cols:
        q = _haar(keras.random.normal((groups, k, k), dtype=dtype, seed=gaussian_seed))
        pairs = k // 2
        re = ops.convert_to_tensor(values[0 : 2 * pairs : 2].real, dtype=dtype)
        im = ops.convert_to_tensor(values[0 : 2 * pairs : 2].imag, dtype=dtype)
        q_even, q_odd = q[..., 0 : 2 * pairs : 2], q[..., 1 : 2 * pairs : 2]
        mixed = ops.stack([q_even * re + q_odd * im, q_odd * re - q_even * im], axis=-1)
        mixed = ops.reshape(mixed, (groups, k, 2 * pairs))
        if k % 2:
            mixed = ops.concatenate([mixed, q[..., -1:] * float(values[-1].real)], axis=-1)
        return ops.einsum("gik,gjk->gij", mixed, q)  # ops.matmul would give float32 for float64
    gaussian = keras.random.normal((groups, rows + cols, k), dtype=dtype, seed=gaussian_seed)
    u, v = _haar(gaussian[:, :rows]), _haar(gaussian[:, rows:])
    s = ops.convert_to_tensor(np.abs(values), dtype=dtype)
    return ops.einsum("gik,gjk->gij", u * s, v)


def _to_kernel(matrices: Any, layout: _Layout, *, conv_mode: str, transposed: bool) -> Any:
    """``(groups, rows, cols)`` matrices to the kernel ``(*k, in_g, out)`` or ``(*k, rows, in)``.

    The columns of a ``"flatten"`` matrix are ordered ``(in_g, *k)``; a ``"delta"`` matrix goes to
    the centre tap ``k // 2`` of every spatial axis, zeros elsewhere.
    """
    kernel, groups, rows, in_g = layout.kernel, layout.groups, layout.rows, layout.in_g
    nk = len(kernel)
    if conv_mode == "flatten" or nk == 0:
        blocks = ops.reshape(matrices, (groups, rows, in_g, *kernel))
    else:
        blocks = ops.reshape(matrices, (groups, rows, in_g, *(1,) * nk))
        widths = [(0, 0)] * 3 + [(size // 2, size - size // 2 - 1) for size in kernel]
        blocks = ops.pad(blocks, widths)
    spatial = tuple(range(3, 3 + nk))
    if transposed:  # (*k, rows, groups, in_g) -> (*k, rows, in)
        blocks = ops.transpose(blocks, (*spatial, 1, 0, 2))
        return ops.reshape(blocks, (*kernel, rows, groups * in_g))
    blocks = ops.transpose(blocks, (*spatial, 2, 0, 1))
    return ops.reshape(blocks, (*kernel, in_g, groups * rows))


@keras.saving.register_keras_serializable(package="m23init", name="M23Keras")
class M23Keras(keras.initializers.Initializer):
    """M23-spectrum kernels for Keras 3 layers (``kernel_initializer=M23Keras(...)``).

    Args:
        scale: ``"norm"`` (``sum(s**2) = gain**2 * in / groups``, energy-preserving) or
            ``"literal"`` (spectral radius ``gain * sqrt(2 / columns)``, the write-up's scale).
        gain: non-negative multiplier, e.g. ``m23init.calculate_gain("relu")``.
        conv_mode: ``"flatten"`` (the full forward matrix) or ``"delta"`` (centre tap only), for
            kernels with spatial axes.
        root_index: which root of the Elkies polynomial to use, 0 to 3.
        groups: the layer's ``groups``; the last axis is split into ``groups`` blocks, each with
            its own basis.
        transposed: the kernel is ``(*k, filters / groups, in)`` (Keras ``Conv*Transpose``).
        seed: an int, ``None`` or a ``keras.random.SeedGenerator``, as for Keras's random
            initializers (see the module docstring).

    Calling it with ``shape`` ``(in, out)``, ``(*k, in / groups, out)`` or (transposed)
    ``(*k, out / groups, in)`` and a real floating ``dtype`` (``None``: ``keras.backend.floatx()``;
    float16 and bfloat16 are built in float32 and cast) returns a backend tensor of that shape
    and dtype.

    Raises:
        ValueError: on a bad ``scale``, ``gain``, ``conv_mode``, ``root_index``, ``groups`` or
            ``seed``; when called, on a shape that is not at least two positive integers, a last
            axis not divisible by ``groups``, or a dtype that is not real floating.
    """

    def __init__(
        self,
        scale: str = "norm",
        gain: float = 1.0,
        conv_mode: str = "flatten",
        root_index: int = 0,
        groups: int = 1,
        transposed: bool = False,
        seed: int | keras.random.SeedGenerator | dict[str, Any] | None = None,
    ) -> None:
        self.scale = _check_scale(scale)
        self.gain = _check_gain(gain)
        self.conv_mode = _check_conv_mode(conv_mode)
        self.root_index = _check_root_index(root_index)
        self.groups = _check_groups(groups)
        self.transposed = bool(transposed)
        if isinstance(seed, dict):  # a serialized SeedGenerator
            seed = keras.saving.deserialize_keras_object(seed)
        if seed is not None and (
            isinstance(seed, bool)
            or not isinstance(seed, (numbers.Integral, keras.random.SeedGenerator))
        ):
            raise ValueError(
                f"seed must be an int, None or a keras.random.SeedGenerator, got {seed!r}"
            )
        self._init_seed = seed
        self.seed: int | keras.random.SeedGenerator
        if seed is None:
            self.seed = random.randint(1, 10**9)  # as keras.src.random.make_default_seed
        elif isinstance(seed, keras.random.SeedGenerator):
            self.seed = seed
        else:
            self.seed = int(seed)

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> Any:
        """The kernel, a backend tensor of ``shape`` and ``dtype``."""
        dtype = keras.backend.standardize_dtype(dtype)
        if not keras.backend.is_float_dtype(dtype):
            raise ValueError(f"dtype must be a real floating dtype, got {dtype}")
        layout = _layout(
            tuple(shape) if isinstance(shape, Sequence) else shape,
            groups=self.groups,
            transposed=self.transposed,
            conv_mode=self.conv_mode,
        )
        k = min(layout.rows, layout.cols)
        fan_in = layout.cols if self.scale == "literal" else layout.in_g
        values = scaled_spectrum(
            k, fan_in=fan_in, scale=self.scale, gain=self.gain, root_index=self.root_index
        )
        compute = "float64" if dtype == "float64" else "float32"
        matrices = _matrices(self.seed, layout, values, compute)
        weight = _to_kernel(matrices, layout, conv_mode=self.conv_mode, transposed=self.transposed)
        return ops.cast(weight, dtype)

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments (``seed`` as given: ``None`` stays ``None``)."""
        return {
            "scale": self.scale,
            "gain": self.gain,
            "conv_mode": self.conv_mode,
            "root_index": self.root_index,
            "groups": self.groups,
            "transposed": self.transposed,
            "seed": keras.saving.serialize_keras_object(self._init_seed),
        }
