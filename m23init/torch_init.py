"""PyTorch integration: an in-place initializer and model-level helpers.

In the style of ``torch.nn.init`` and timm's ``weight_init.py``:

* :func:`m23_` fills one tensor in place (Linear ``(out, in)``, Conv ``(out, in / groups, *k)``,
  ConvTranspose ``(in, out / groups, *k)``), on the tensor's own device and dtype.
* :func:`init_model` walks ``named_modules()`` and initializes every supported module, keying
  each weight's random basis on ``(seed, qualified parameter name, shape)``.
* :func:`apply_m23_init` is the per-module function for ``model.apply(apply_m23_init)``; it gives
  the same weights as :func:`init_model` (see its docstring for how it learns the names).

Supported modules: ``nn.Linear`` (and subclasses such as the ``out_proj`` of
``nn.MultiheadAttention``), ``nn.Conv1d/2d/3d``, ``nn.ConvTranspose1d/2d/3d`` and the input
projections of ``nn.MultiheadAttention`` (each ``E x E`` chunk of ``in_proj_weight``, or
``q/k/v_proj_weight``), which together cover ``nn.TransformerEncoderLayer``. Their biases
(``bias``, ``in_proj_bias``) are set to zero; ``bias_k``/``bias_v`` of ``MultiheadAttention``
(learned extra key/value rows, not additive biases) and all other modules are left untouched.

How a weight is built (all in torch ops, on the tensor's device): an ``n x n`` matrix is
``Q B Q^T`` with ``B`` the block-diagonal M23 matrix and ``Q`` Haar-random orthogonal; a
rectangular one is ``U S V^T``. The bases are products of Householder reflections whose vectors
are independent Gaussian vectors: the reflections a Householder QR of a Gaussian matrix would
produce, without doing the QR (``orthogonal_`` does the QR). Below ``min(rows, cols) = 1024``
the bases are formed with ``torch.linalg.householder_product`` and multiplied
(``4/3 n^3 + 2 n^3`` flops, few calls); from 1024 on the reflections are applied to ``B`` from
both sides in blocks of 128 or 256 in compact WY form, with matrix products only (``8/3 n^3``
flops of GEMM, against ``8/3 n^3`` flops of Householder QR in ``torch.nn.init.orthogonal_``).
See ``python -m m23init.bench``.

Determinism: with a ``key`` (and in :func:`init_model` / :func:`apply_m23_init`, always) the
result is a function of the key, shape and options only: the same in every process for the same
device type, torch version and number of threads (BLAS results can depend on the last two).

Conv weights, ``conv_mode``:

* ``"flatten"``: per group, the ``(out / groups, in / groups * prod(k))`` matrix of the forward
  map (for ConvTranspose: the matrix of the equivalent stride-1 convolution, up to a permutation
  of its columns, which leaves the singular values unchanged), reshaped to the weight's layout.
* ``"delta"``: per group, the ``(out / groups, in / groups)`` matrix at the kernel's centre tap
  (index ``k // 2`` in every spatial dimension) and zeros elsewhere, as in delta-orthogonal init.

Scales (``scale``):

* ``"norm"`` (default): ``sum(s**2) = gain**2 * fan_in`` with ``fan_in`` the number of input
  *channels* per group. For a Linear that is ``E ||W x||^2 = gain**2 ||x||^2``. For a convolution
  it keeps the feature map's energy per position (stride 1, ignoring borders; for ConvTranspose
  at any stride): the patches a convolution sees overlap, so scaling to the patch size
  ``in * prod(k)`` would multiply the energy by ``prod(k)`` in every layer.
* ``"literal"``: spectral radius ``gain * sqrt(2 / fan_in)`` with ``fan_in`` the number of columns
  of the matrix (``in / groups * prod(k)`` for ``"flatten"``, ``in / groups`` for ``"delta"``),
  as written in the write-up.
"""

from __future__ import annotations

import hashlib
import logging
import math
import numbers
import sys
from collections.abc import Callable
from typing import TypeAlias, TypeVar

import numpy as np
import torch
from torch import nn

from m23init.matrix import _check_gain, _check_scale, calculate_gain, scaled_spectrum
from m23init.spectrum import _check_root_index

__all__ = [
    "CONV_MODES",
    "apply_m23_init",
    "calculate_gain",
    "init_model",
    "m23_",
    "stable_seed",
]

logger = logging.getLogger(__name__)

CONV_MODES: tuple[str, ...] = ("flatten", "delta")
"""The accepted values of the ``conv_mode`` argument."""

Key: TypeAlias = "int | str | bytes | tuple[Key, ...]"
"""A basis key: an int, str, bytes, or a tuple of those."""

GainFn = Callable[[str, nn.Module], float]
"""``gain(qualified_module_name, module) -> float`` for :func:`init_model`."""

ModuleT = TypeVar("ModuleT", bound=nn.Module)

_TWO_SIDED_MIN = 1024  # min(rows, cols) from which the two-sided path is used
_MAX_WRAPPER_FRAMES = 4  # frames allowed between nn.Module.apply and apply_m23_init
_APPLY_CODE = nn.Module.apply.__code__

_LINEAR = (nn.Linear,)
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV_TRANSPOSE = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


# --------------------------------------------------------------------------------------------
# Argument checks and keys
# --------------------------------------------------------------------------------------------


def _check_conv_mode(conv_mode: object) -> str:
    if conv_mode not in CONV_MODES:
        raise ValueError(f"conv_mode must be one of {CONV_MODES}, got {conv_mode!r}")
    return str(conv_mode)


def _check_key(key: object) -> None:
    if isinstance(key, bool) or not isinstance(key, (int, str, bytes, tuple)):
        raise TypeError(f"key must be an int, str, bytes or a tuple of those, got {key!r}")
    if isinstance(key, tuple):
        for part in key:
            _check_key(part)


def stable_seed(key: Key) -> int:
    """A 63-bit seed from a key, the same in every process (unlike the salted ``hash()``).

    Args:
        key: an int, str, bytes, or a (nested) tuple of those.

    Returns:
        An int in ``[0, 2**63)``, the BLAKE2b hash of ``repr(key)``.
    """
    _check_key(key)
    digest = hashlib.blake2b(repr(key).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def _generator(key: Key, device: torch.device) -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(stable_seed(key))
    return generator


# --------------------------------------------------------------------------------------------
# The matrix: blocked two-sided Householder application
# --------------------------------------------------------------------------------------------


def _block_size(k: int) -> int:
    """Reflections per block of the two-sided path (even, so no 2 x 2 block straddles two).

    Larger blocks mean fewer, larger matrix products (less overhead per call, which matters on a
    busy CPU and for GPU launches) but ``O(n^2 w)`` more work in preparing the blocks.
    """
    return 128 if k <= 2048 else 256


def _householder_vectors(
    rows: int,
    count: int,
    generator: torch.Generator | None,
    device: torch.device,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``count`` Householder reflections in ``R^rows`` from independent Gaussian vectors.

    Reflection ``i`` is ``H_i = I - tau_i v_i v_i^T``; it acts on coordinates ``i..rows-1`` and
    maps a Gaussian vector ``x`` (column ``i`` of a Gaussian matrix, from row ``i`` down) to
    ``beta e_i`` with ``beta = -sign(x_0) ||x||``, as LAPACK's ``geqrf`` would. These are
    distributed as the reflections of a Householder QR of a Gaussian matrix (by rotation
    invariance), so ``H_0 ... H_{count-1} diag(sign(beta))`` is Haar distributed (Stewart 1980;
    Mezzadri 2007), without doing the QR.

    Returns:
        ``(V, tau, signs)``: ``V`` ``(rows, count)`` unit lower trapezoidal (the layout of
        ``torch.linalg.householder_product``), ``tau`` ``(count,)``, and ``signs`` ``(count,)``
        the ``sign(beta)`` to apply to the product's columns.
    """
    v = torch.randn(rows, count, generator=generator, device=device, dtype=dtype)
    x0 = torch.diagonal(v).clone()
    v = torch.tril(v, -1)
    norms = (v.square().sum(dim=0) + x0.square()).sqrt_().clamp_min_(torch.finfo(dtype).tiny)
    s = torch.where(x0 >= 0, 1.0, -1.0).to(dtype)
    tau = 1.0 + x0.abs() / norms
    v.div_(x0 + s * norms)
    v.diagonal().fill_(1.0)
    return v, tau, -s


def _wy_factors(v: torch.Tensor, tau: torch.Tensor, block: int) -> torch.Tensor:
    """Compact WY factors of the reflections, in blocks of ``block`` columns.

    Block ``b`` (columns ``j..j+w-1``) is ``H_j ... H_{j+w-1} = I - V_b T_b V_b^T`` with
    ``V_b = V[:, j:j+w]`` and ``T_b`` upper triangular,
    ``T_b^-1 = diag(1 / tau) + strictly upper part of V_b^T V_b`` (Puglisi 1992; Joffrain et al.
    2006). All blocks are computed in a few batched calls.

    Returns:
        ``VT`` of the shape of ``V`` with ``VT[:, j:j+w] = V_b T_b^T``.
    """
    rows, count = v.shape
    blocks = -(-count // block)
    padded = blocks * block
    inv_tau = 1.0 / tau
    if padded != count:
        v = torch.nn.functional.pad(v, (0, padded - count))
        inv_tau = torch.nn.functional.pad(inv_tau, (0, padded - count), value=1.0)
    v_blocks = v.reshape(rows, blocks, block).permute(1, 0, 2)  # (blocks, rows, w)
    t_inv = torch.triu(v_blocks.transpose(1, 2) @ v_blocks, 1)
    t_inv.diagonal(dim1=1, dim2=2).copy_(inv_tau.reshape(blocks, block))
    eye = torch.eye(block, device=v.device, dtype=v.dtype).expand(blocks, block, block)
    t = torch.linalg.solve_triangular(t_inv, eye, upper=True)
    return (v_blocks @ t.transpose(1, 2)).permute(1, 0, 2).reshape(rows, padded)[:, :count]


def _apply_two_sided(
    work: torch.Tensor,
    left: tuple[torch.Tensor, torch.Tensor],
    right: tuple[torch.Tensor, torch.Tensor],
    block: int,
) -> None:
    """``work <- Q_l work Q_r^T`` in place, for a ``work`` that is block diagonal so far.

    ``Q_l`` and ``Q_r`` are products of ``k = min(work.shape)`` reflections given as ``(V, VT)``
    (:func:`_wy_factors`). ``work`` must be zero outside its leading ``k x k`` block and block
    diagonal there in blocks of at most 2 x 2 that start at even indices. The blocks of
    reflections are applied from the innermost out: before block ``b`` (columns ``j..``) is
    applied, ``work`` differs from its start only in ``[j:, j:]``, so each step is four matrix
    products on that trailing part, ``8/3 n^3`` flops in all for ``n x n``.
    """
    v_l, vt_l = left
    v_r, vt_r = right
    k = min(work.shape)
    for j in reversed(range(0, k, block)):
        w = min(block, k - j)
        x = work[j:, j:]
        vl, vtl = v_l[j:, j : j + w], vt_l[j:, j : j + w]
        vr, vtr = v_r[j:, j : j + w], vt_r[j:, j : j + w]
        # (I - Vl Tl Vl^T) X (I - Vr Tr^T Vr^T) = X - A Vr^T - Vl D with A = X Vr Tr^T,
        # D = Tl Vl^T X - E Vr^T and E = Tl Vl^T A.
        a = x @ vtr
        d_t = x.T @ vtl
        e = vtl.T @ a
        d_t.addmm_(vr, e.T, alpha=-1.0)
        x.addmm_(a, vr.T, alpha=-1.0)
        x.addmm_(vl, d_t.T, alpha=-1.0)


def _m23_matrix(
    rows: int,
    cols: int,
    *,
    fan_in: int,
    scale: str,
    gain: float,
    root_index: int,
    generator: torch.Generator | None,
    device: torch.device,
    dtype: torch.dtype,
) -> torch.Tensor:
    """A ``(rows, cols)`` M23 matrix: ``Q B Q^T`` if square, else ``U S V^T``.

    Below :data:`_TWO_SIDED_MIN` the bases are formed explicitly with
    ``torch.linalg.householder_product`` (LAPACK ``orgqr``) and multiplied (fewest calls); from
    there on the reflections are applied to the core from both sides
    (:func:`_apply_two_sided`, fewest flops). A rectangular matrix is built wide
    (``rows <= cols``) and transposed if needed.
    """
    square = rows == cols
    short, long = sorted((rows, cols))
    k = short
    values = scaled_spectrum(k, fan_in=fan_in, scale=scale, gain=gain, root_index=root_index)

    def as_tensor(array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(array), device=device, dtype=dtype)

    v_l, tau_l, signs_l = _householder_vectors(k, k, generator, device, dtype)
    if square:
        v_r, tau_r, signs_r = v_l, tau_l, signs_l
    else:
        v_r, tau_r, signs_r = _householder_vectors(long, k, generator, device, dtype)
    # The Haar bases are Q diag(signs); fold the signs into the core. For Q D B D Q^T that flips
    # b of the pairs whose signs differ; for U D_l S D_r V^T it multiplies S by both signs.
    pairs = k // 2
    if square:
        re = as_tensor(values[0 : 2 * pairs : 2].real)
        im = as_tensor(values[0 : 2 * pairs : 2].imag)
        im = im * signs_l[0 : 2 * pairs : 2] * signs_l[1 : 2 * pairs : 2]
    else:
        sing = as_tensor(np.abs(values)) * signs_l * signs_r

    if k < _TWO_SIDED_MIN:
        q_l = torch.linalg.householder_product(v_l, tau_l)
        if square:
            # Q B: mixes the column pairs of Q.
            mixed = torch.empty_like(q_l)
            q_even, q_odd = q_l[:, 0 : 2 * pairs : 2], q_l[:, 1 : 2 * pairs : 2]
            torch.addcmul(q_even * re, q_odd, im, out=mixed[:, 0 : 2 * pairs : 2])
            torch.addcmul(q_odd * re, q_even, im, value=-1.0, out=mixed[:, 1 : 2 * pairs : 2])
            if k % 2:
                mixed[:, -1] = q_l[:, -1] * float(values[-1].real)
            return mixed @ q_l.T
        q_r = torch.linalg.householder_product(v_r, tau_r)
        wide = (q_l * sing) @ q_r.T
        return wide if rows == short else wide.T

    block = _block_size(k)
    vt_l = _wy_factors(v_l, tau_l, block)
    vt_r = vt_l if square else _wy_factors(v_r, tau_r, block)
    # Pad the leading dimension away from a power of two: strided GEMM on e.g. 4096 columns
    # thrashes the cache.
    ld = long + ((64 - long) % 128)
    work = torch.zeros(short, ld, device=device, dtype=dtype)[:, :long]
    if square:
        even = 2 * torch.arange(pairs, device=device)
        work[even, even] = re
        work[even + 1, even + 1] = re
        work[even + 1, even] = im
        work[even, even + 1] = -im
        if k % 2:
            work[k - 1, k - 1] = float(values[-1].real)
    else:
        work.diagonal()[:k] = sing
    _apply_two_sided(work, (v_l, vt_l), (v_r, vt_r), block)
    return work if rows == short else work.T


# --------------------------------------------------------------------------------------------
# Tensor-level initializer
# --------------------------------------------------------------------------------------------


def m23_(
    tensor: torch.Tensor,
    *,
    scale: str = "norm",
    gain: float = 1.0,
    conv_mode: str = "flatten",
    root_index: int = 0,
    key: Key | None = None,
    groups: int = 1,
    transposed: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Fills ``tensor`` in place with an M23-spectrum weight, like ``torch.nn.init`` functions.

    A square matrix (Linear ``(n, n)``, or a conv whose per-group matrix is square) has exactly
    the tiled M23 eigenvalues; any matrix has their moduli as singular values. The weight is
    built on ``tensor.device``; in float64 for float64 tensors and in float32 otherwise (float16
    and bfloat16 tensors receive the rounded float32 result). Runs under ``torch.no_grad()``.

    Args:
        tensor: at least 2-D floating-point tensor: ``(out, in)``, ``(out, in / groups, *k)``,
            or with ``transposed`` ``(in, out / groups, *k)``.
        scale: ``"norm"`` (``sum(s**2) = gain**2 * in / groups``) or ``"literal"`` (spectral
            radius ``gain * sqrt(2 / fan_in)``); see the module docstring.
        gain: non-negative multiplier, e.g. ``calculate_gain("relu")``.
        conv_mode: ``"flatten"`` or ``"delta"`` (centre tap only), for tensors with a kernel.
        root_index: which root of the Elkies polynomial to use, 0 to 3.
        key: seeds a fresh ``torch.Generator`` on the tensor's device through
            :func:`stable_seed`, so the result is the same in every process (on one device
            type). With neither ``key`` nor ``generator`` the default generator is used, as in
            ``torch.nn.init``.
        groups: number of groups of a grouped convolution; each group gets its own basis.
        transposed: the tensor is a ConvTranspose weight ``(in, out / groups, *k)``.
        generator: a generator to draw from instead of ``key``.

    Returns:
        ``tensor``.

    Raises:
        ValueError: on a tensor with fewer than 2 dimensions, no elements, or a non-floating
            dtype; a first dimension not divisible by ``groups``; or a bad ``scale``, ``gain``,
            ``conv_mode``, ``root_index`` or ``groups``, or both ``key`` and ``generator``.
        TypeError: on a ``key`` of another type.
    """
    scale = _check_scale(scale)
    gain = _check_gain(gain)
    conv_mode = _check_conv_mode(conv_mode)
    root_index = _check_root_index(root_index)
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups <= 0:
        raise ValueError(f"groups must be a positive integer, got {groups!r}")
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"tensor must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dim() < 2:
        raise ValueError(f"tensor must have at least 2 dimensions, got shape {tuple(tensor.shape)}")
    if tensor.numel() == 0:
        raise ValueError(f"tensor must not be empty, got shape {tuple(tensor.shape)}")
    if not tensor.is_floating_point():
        raise ValueError(f"tensor must be floating point, got {tensor.dtype}")
    if key is not None and generator is not None:
        raise ValueError("pass key or generator, not both")
    if key is not None:
        _check_key(key)
    if tensor.shape[0] % groups:
        raise ValueError(
            f"groups ({groups}) must divide the first dimension of shape {tuple(tensor.shape)}"
        )
    if tensor.is_meta:
        return tensor

    dim0, dim1, kernel = tensor.shape[0], tensor.shape[1], tuple(tensor.shape[2:])
    per_group = dim0 // groups
    out_g, in_g = (dim1, per_group) if transposed else (per_group, dim1)
    taps = math.prod(kernel)
    cols = in_g * taps if conv_mode == "flatten" else in_g
    fan_in = cols if scale == "literal" else in_g
    device = tensor.device
    dtype = torch.float64 if tensor.dtype == torch.float64 else torch.float32
    if key is not None:
        generator = _generator(key, device)
    centre = tuple(size // 2 for size in kernel)

    with torch.no_grad():
        for group in range(groups):
            matrix = _m23_matrix(
                out_g,
                cols,
                fan_in=fan_in,
                scale=scale,
                gain=gain,
                root_index=root_index,
                generator=generator,
                device=device,
                dtype=dtype,
            )
            target = tensor[group * per_group : (group + 1) * per_group]
            if conv_mode == "flatten":
                block = matrix.reshape(out_g, in_g, *kernel)
                target.copy_(block.transpose(0, 1) if transposed else block)
            else:
                target.zero_()
                index = (slice(None), slice(None), *centre)
                target[index] = (matrix.T if transposed else matrix).to(tensor.dtype)
    return tensor


# --------------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------------


def _init_module(
    module: nn.Module,
    name: str,
    *,
    scale: str,
    gain: float,
    conv_mode: str,
    root_index: int,
    seed: int,
) -> bool:
    """Initializes the weights that ``module`` itself holds; returns whether it is supported.

    The basis of a weight is keyed on ``(seed, qualified parameter name, shape)``.
    """
    prefix = f"{name}." if name else ""

    def init(tensor: torch.Tensor, param: str, **kwargs: object) -> None:
        key = (seed, prefix + param, tuple(tensor.shape))
        m23_(
            tensor,
            scale=scale,
            gain=gain,
            conv_mode=conv_mode,
            root_index=root_index,
            key=key,
            **kwargs,  # type: ignore[arg-type]
        )

    if isinstance(module, nn.MultiheadAttention):
        if module.in_proj_weight is not None:
            chunks = module.in_proj_weight.split(module.embed_dim, dim=0)
            for index, chunk in enumerate(chunks):
                init(chunk, f"in_proj_weight[{index}]")
        else:
            for param in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                init(getattr(module, param), param)
        if module.in_proj_bias is not None:
            with torch.no_grad():
                module.in_proj_bias.zero_()
        return True

    if isinstance(module, _LINEAR + _CONV + _CONV_TRANSPOSE):
        weight = module.weight
        if isinstance(weight, nn.parameter.UninitializedParameter):
            logger.warning("skipping %s: lazy module not yet materialized", name or "module")
            return False
        if isinstance(module, _LINEAR):
            init(weight, "weight")
        else:
            init(
                weight,
                "weight",
                groups=module.groups,
                transposed=isinstance(module, _CONV_TRANSPOSE),
            )
        bias = module.bias
        if bias is not None and not isinstance(bias, nn.parameter.UninitializedParameter):
            with torch.no_grad():
                bias.zero_()
        return True
    return False


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    return int(seed)


def init_model(
    model: ModuleT,
    *,
    scale: str = "norm",
    gain: float | GainFn = 1.0,
    conv_mode: str = "flatten",
    root_index: int = 0,
    seed: int = 0,
) -> ModuleT:
    """Initializes every supported module of ``model`` with :func:`m23_`, in place.

    Walks ``model.named_modules()``; a weight's basis is keyed on
    ``(seed, qualified parameter name, shape)`` (e.g. ``"layers.3.linear1.weight"``), so the
    result does not depend on the order of the walk, is the same in every process, and two
    same-shape layers get different bases. Biases are set to zero; unsupported modules (norms,
    embeddings, ...) are left untouched.

    Args:
        model: the module tree to initialize.
        scale: ``"norm"`` or ``"literal"``; see :func:`m23_`.
        gain: a non-negative number, or ``gain(name, module) -> float`` called per supported
            module with its qualified name.
        conv_mode: ``"flatten"`` or ``"delta"`` for convolutions.
        root_index: which root of the Elkies polynomial to use, 0 to 3.
        seed: integer mixed into every key.

    Returns:
        ``model``.

    Raises:
        ValueError: on a bad ``scale``, ``gain``, ``conv_mode``, ``root_index`` or ``seed``.
    """
    scale = _check_scale(scale)
    conv_mode = _check_conv_mode(conv_mode)
    root_index = _check_root_index(root_index)
    seed = _check_seed(seed)
    gain_fn = gain if callable(gain) else None
    fixed_gain = _check_gain(gain) if gain_fn is None else 1.0
    count = 0
    for name, module in model.named_modules():
        if not isinstance(module, (nn.MultiheadAttention, *_LINEAR, *_CONV, *_CONV_TRANSPOSE)):
            continue
        module_gain = _check_gain(gain_fn(name, module)) if gain_fn is not None else fixed_gain
        count += _init_module(
            module,
            name,
            scale=scale,
            gain=module_gain,
            conv_mode=conv_mode,
            root_index=root_index,
            seed=seed,
        )
    logger.debug("m23 init: %d modules initialized", count)
    return model


def _name_in_apply(module: nn.Module) -> str:
    """The qualified name of ``module`` below the module that ``.apply()`` was called on.

    ``nn.Module.apply(fn)`` recurses through the children and then calls ``fn(self)``, so while
    ``fn(module)`` runs, the interpreter stack holds one ``nn.Module.apply`` frame per ancestor of
    ``module``, up to the root of the ``.apply()`` call. Each child's name is looked up among its
    parent's ``named_children()``. Returns ``""`` when ``module`` is not being visited by
    ``.apply()`` (a direct call).
    """
    frame = sys._getframe(2)
    for _ in range(_MAX_WRAPPER_FRAMES):
        if frame is None:
            return ""
        if frame.f_code is _APPLY_CODE and frame.f_locals.get("self") is module:
            break
        frame = frame.f_back  # type: ignore[assignment]
    else:
        return ""
    parts: list[str] = []
    child = module
    parent_frame = frame.f_back
    while parent_frame is not None and parent_frame.f_code is _APPLY_CODE:
        parent = parent_frame.f_locals.get("self")
        if not isinstance(parent, nn.Module):
            break
        found = next((n for n, m in parent.named_children() if m is child), None)
        if found is None:
            break
        parts.append(found)
        child = parent
        parent_frame = parent_frame.f_back
    del frame, parent_frame
    return ".".join(reversed(parts))


def apply_m23_init(
    module: nn.Module,
    *,
    scale: str = "norm",
    gain: float = 1.0,
    conv_mode: str = "flatten",
    root_index: int = 0,
    seed: int = 0,
) -> None:
    """Initializes the weights ``module`` itself holds; for ``model.apply(apply_m23_init)``.

    ``model.apply`` passes modules without names, yet a basis should be keyed on a name, not on
    call order or on global state. This function reads the module's qualified name below the
    module ``.apply()`` was called on from the stack of ``nn.Module.apply`` frames (see
    :func:`_name_in_apply`), so ``model.apply(apply_m23_init)`` gives bit for bit the weights of
    ``init_model(model)``: deterministic across processes, different bases for same-shape
    layers, no global RNG and no global state. Options can be bound with
    ``functools.partial``. Called directly (not through ``.apply``) the module's name is ``""``;
    for a whole model prefer :func:`init_model`, which needs no stack inspection.

    Args:
        module: any module; unsupported types are left untouched.
        scale: ``"norm"`` or ``"literal"``; see :func:`m23_`.
        gain: non-negative multiplier.
        conv_mode: ``"flatten"`` or ``"delta"`` for convolutions.
        root_index: which root of the Elkies polynomial to use, 0 to 3.
        seed: integer mixed into every key.

    Raises:
        ValueError: on a bad ``scale``, ``gain``, ``conv_mode``, ``root_index`` or ``seed``.
    """
    scale = _check_scale(scale)
    gain = _check_gain(gain)
    conv_mode = _check_conv_mode(conv_mode)
    root_index = _check_root_index(root_index)
    seed = _check_seed(seed)
    if not isinstance(module, (nn.MultiheadAttention, *_LINEAR, *_CONV, *_CONV_TRANSPOSE)):
        return
    _init_module(
        module,
        _name_in_apply(module),
        scale=scale,
        gain=gain,
        conv_mode=conv_mode,
        root_index=root_index,
        seed=seed,
    )
