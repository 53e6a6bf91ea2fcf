"""Tests of m23init: the spectrum, the NumPy matrices, the PyTorch initializers."""

from __future__ import annotations

import ctypes
import functools
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import m23init
import m23init.torch_init as torch_init
from m23init import (
    apply_m23_init,
    calculate_gain,
    condition_number,
    elkies_roots,
    generate_m23_stable_spectrum,
    init_model,
    m23_,
    m23_eigenvalues,
    mgi_init_stable,
    scaled_spectrum,
    tile_spectrum,
)
from m23init.spectrum import factor_polynomials

REPO = Path(__file__).resolve().parent.parent
ROOT0 = complex(-1.0494723, 3.0735661)


def match_error(computed: np.ndarray, expected: np.ndarray) -> float:
    """Largest distance when each expected value is paired with its nearest unused computed one.

    (Sorting complex numbers is fragile when real parts tie up to rounding.)
    """
    remaining = list(np.asarray(computed, dtype=np.complex128))
    assert len(remaining) == len(expected)
    worst = 0.0
    for z in np.asarray(expected, dtype=np.complex128):
        dist = np.abs(np.asarray(remaining) - z)
        i = int(np.argmin(dist))
        worst = max(worst, float(dist[i]))
        remaining.pop(i)
    return worst


def _as_double(weight: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(weight, np.ndarray):
        weight = torch.from_numpy(weight)
    return weight.detach().cpu().double()


# The checks use torch's linear algebra: the module fixture below keeps it on one thread.
def eigenvalues(weight: np.ndarray | torch.Tensor) -> np.ndarray:
    return torch.linalg.eigvals(_as_double(weight)).numpy()


def singular_values(weight: np.ndarray | torch.Tensor) -> np.ndarray:
    return torch.linalg.svdvals(_as_double(weight)).numpy()


def norm_ratio(weight: np.ndarray | torch.Tensor, samples: int = 4000, seed: int = 0) -> float:
    """Mean of ||W x||^2 / ||x||^2 over standard Gaussian x."""
    w = _as_double(weight)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(w.shape[1], samples, generator=gen, dtype=torch.float64)
    return float(((w @ x).pow(2).sum(0) / x.pow(2).sum(0)).mean())


def _numpy_blas_threads(count: int) -> int | None:
    """Sets the thread count of NumPy's bundled OpenBLAS and returns the previous one.

    Returns None (and changes nothing) when the library or its functions are not found.
    """
    libs = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for path in sorted(libs.glob("libscipy_openblas*.so*")):
        try:
            lib = ctypes.CDLL(str(path))  # already loaded: the same handle
        except OSError:
            continue
        for suffix in ("64_", "_64_", ""):
            get = getattr(lib, f"scipy_openblas_get_num_threads{suffix}", None)
            put = getattr(lib, f"scipy_openblas_set_num_threads{suffix}", None)
            if get is not None and put is not None:
                previous = int(get())
                put(ctypes.c_int(count))
                return previous
    return None


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One BLAS thread in torch and NumPy for these tests.

    On a CPU shared with other jobs, oversubscribed BLAS threads stall on every barrier (LAPACK's
    QR of a 128 x 128 matrix then takes up to 1 s instead of 1 ms); the work here is small.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    numpy_threads = _numpy_blas_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        if numpy_threads is not None:
            _numpy_blas_threads(numpy_threads)


# ---------------------------------------------------------------------------------------------
# The spectrum
# ---------------------------------------------------------------------------------------------


def test_elkies_roots_order_and_residual() -> None:
    roots = elkies_roots()
    assert roots.shape == (4,)
    np.testing.assert_allclose(roots, np.roots([1, 1, 9, -10, 8]))
    assert abs(roots[0] - ROOT0) < 1e-6
    residual = np.polyval([1, 1, 9, -10, 8], roots)
    assert np.max(np.abs(residual)) < 1e-9


@pytest.mark.parametrize("root_index", [0, 1, 2, 3])
def test_eigenvalues_are_factor_roots_with_multiplicities(root_index: int) -> None:
    g = elkies_roots()[root_index]
    values = m23_eigenvalues(root_index)
    assert values.shape == (23,)
    p2, p3, p4 = factor_polynomials(g)
    groups = {"P2": (p2, values[:4], 2), "P3": (p3, values[4:7], 1), "P4": (p4, values[7:], 4)}
    for name, (poly, part, multiplicity) in groups.items():
        scale = max(1.0, float(np.max(np.abs(part))) ** (len(poly) - 1))
        assert np.max(np.abs(np.polyval(poly, part))) < 1e-10 * scale, name
        distinct = np.roots(poly)
        # Each root of the polynomial appears exactly `multiplicity` times, and nothing else.
        for root in distinct:
            assert int(np.sum(np.abs(part - root) < 1e-9)) == multiplicity, name
        assert part.size == multiplicity * distinct.size
    # The explicit coefficients of the write-up.
    np.testing.assert_allclose(p2, [1, -g, g**2])
    np.testing.assert_allclose(p3, [1, 0, g, -1])
    np.testing.assert_allclose(p4, [1, g, -(g**2), 1, -g])


def test_condition_number_is_17_59() -> None:
    assert condition_number(0) == pytest.approx(17.59, abs=0.01)
    assert condition_number(1) == pytest.approx(17.59, abs=0.01)  # the conjugate root
    assert condition_number(2) == pytest.approx(1.9556, abs=1e-3)  # a wrong root would show


def test_spectrum_is_cached_and_not_exposed() -> None:
    first = m23_eigenvalues(0)
    first[:] = 0
    assert np.all(m23_eigenvalues(0) != 0)
    assert m23init.spectrum._m23_eigenvalues_cached.cache_info().hits > 0


def test_tile_spectrum_layout() -> None:
    lam = m23_eigenvalues(0)
    tiled = tile_spectrum(lam, 5)
    np.testing.assert_allclose(
        tiled, [lam[0], np.conj(lam[0]), lam[1], np.conj(lam[1]), abs(lam[2])]
    )
    big = tile_spectrum(lam, 2 * 23 + 4)
    np.testing.assert_allclose(big[46:50], [lam[0], np.conj(lam[0]), lam[1], np.conj(lam[1])])


@pytest.mark.parametrize("fan_in", [1, 64, 512])
def test_generate_spectrum_radius(fan_in: int) -> None:
    spectrum = generate_m23_stable_spectrum(fan_in)
    assert spectrum.shape == (23,)
    assert np.max(np.abs(spectrum)) == pytest.approx(math.sqrt(2 / fan_in), rel=1e-12)
    # Same directions as the unscaled values.
    ratio = spectrum / m23_eigenvalues(0)
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-12)
    tiled = generate_m23_stable_spectrum(fan_in, size=31, scale_factor=0.5)
    assert tiled.shape == (31,)
    assert np.max(np.abs(tiled)) == pytest.approx(0.5 * math.sqrt(2 / fan_in), rel=1e-12)


def test_scaled_spectrum_modes() -> None:
    literal = scaled_spectrum(100, fan_in=300, scale="literal", gain=2.0)
    assert np.max(np.abs(literal)) == pytest.approx(2.0 * math.sqrt(2 / 300), rel=1e-12)
    norm = scaled_spectrum(100, fan_in=300, scale="norm", gain=2.0)
    assert np.sum(np.abs(norm) ** 2) == pytest.approx(4.0 * 300, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# Matrices: eigenvalues, singular values, scales (NumPy and torch)
# ---------------------------------------------------------------------------------------------


def _numpy_weight(shape: tuple[int, int], scale: str, gain: float = 1.0) -> np.ndarray:
    return mgi_init_stable(shape, scale=scale, gain=gain, seed=3)


def _torch_weight(
    shape: tuple[int, int], scale: str, gain: float = 1.0, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    return m23_(torch.empty(shape, dtype=dtype), scale=scale, gain=gain, key="test")


BUILDERS = {"numpy": _numpy_weight, "torch": _torch_weight}


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("n", [64, 65, 200])
def test_square_literal_eigenvalues_are_the_tiled_spectrum(builder: str, n: int) -> None:
    weight = BUILDERS[builder]((n, n), "literal")
    expected = generate_m23_stable_spectrum(n, size=n)
    assert match_error(eigenvalues(weight), expected) < 1e-5
    # A weight with another root's spectrum would not match.
    other = generate_m23_stable_spectrum(n, size=n, root_index=2)
    assert match_error(eigenvalues(weight), other) > 1e-2


@pytest.mark.parametrize("builder", BUILDERS)
def test_condition_number_of_512_by_256(builder: str) -> None:
    s = singular_values(BUILDERS[builder]((512, 256), "norm"))
    assert s.size == 256
    assert s.max() / s.min() == pytest.approx(17.59, abs=0.01)


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("shape", [(128, 128), (300, 100), (100, 300)])
def test_singular_values_are_the_moduli(builder: str, shape: tuple[int, int]) -> None:
    weight = BUILDERS[builder](shape, "norm")
    k = min(shape)
    expected = np.sort(np.abs(scaled_spectrum(k, fan_in=shape[1], scale="norm")))
    np.testing.assert_allclose(np.sort(singular_values(weight)), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("shape", [(128, 128), (256, 128), (128, 256)])
def test_literal_spectral_radius(builder: str, shape: tuple[int, int]) -> None:
    weight = BUILDERS[builder](shape, "literal", 1.0)
    target = math.sqrt(2 / shape[1])
    assert singular_values(weight).max() == pytest.approx(target, rel=1e-5)
    if shape[0] == shape[1]:
        assert np.abs(eigenvalues(weight)).max() == pytest.approx(target, rel=1e-5)


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("shape", [(128, 128), (256, 128), (128, 256)])
@pytest.mark.parametrize("gain", [1.0, math.sqrt(2)])
def test_norm_mode_preserves_the_norm(builder: str, shape: tuple[int, int], gain: float) -> None:
    weight = BUILDERS[builder](shape, "norm", gain)
    assert norm_ratio(weight) == pytest.approx(gain**2, rel=0.02)
    # The literal scale is far from norm preserving (a wrong default would show).
    assert norm_ratio(BUILDERS[builder](shape, "literal", gain)) < 0.1 * gain**2


def test_numpy_weight_dtype_and_seed() -> None:
    a = mgi_init_stable((40, 30), seed=1)
    assert a.dtype == np.float32 and a.shape == (40, 30)
    np.testing.assert_array_equal(a, mgi_init_stable((40, 30), seed=1))
    assert not np.allclose(a, mgi_init_stable((40, 30), seed=2))
    state = np.random.get_state()
    mgi_init_stable((40, 30), seed=1)
    assert np.array_equal(np.random.get_state()[1], state[1])  # global RNG untouched


@pytest.mark.parametrize("shape", [(200, 200), (201, 201), (150, 300), (300, 150)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_two_sided_path_equals_explicit_path(
    shape: tuple[int, int], dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large matrices take the blocked two-sided path; force it on small ones and compare."""
    explicit = m23_(torch.empty(shape, dtype=dtype), key=7)
    monkeypatch.setattr(torch_init, "_TWO_SIDED_MIN", 1)
    two_sided = m23_(torch.empty(shape, dtype=dtype), key=7)
    tol = 1e-12 if dtype == torch.float64 else 2e-5
    torch.testing.assert_close(two_sided, explicit, rtol=0, atol=tol * explicit.abs().max())
    if shape[0] == shape[1]:
        lit = m23_(torch.empty(shape, dtype=torch.float64), scale="literal", key=1)
        expected = generate_m23_stable_spectrum(shape[0], size=shape[0])
        assert match_error(eigenvalues(lit), expected) < 1e-10


def test_basis_is_haar_like() -> None:
    """Entries of Q B Q^T: mean tr(B)/n on the diagonal, 0 off it, for both paths and NumPy."""
    n, draws = 6, 1500
    spectrum = scaled_spectrum(n, fan_in=n, scale="norm")
    expected_diag = spectrum.real.sum() / n
    samples = np.stack(
        [m23_(torch.empty(n, n, dtype=torch.float64), key=i).numpy() for i in range(draws)]
    )
    reference = np.stack([mgi_init_stable((n, n), seed=i) for i in range(draws)])
    for stack in (samples, reference):
        mean = stack.mean(axis=0)
        assert np.abs(np.diag(mean) - expected_diag).max() < 0.06
        assert np.abs(mean - np.diag(np.diag(mean))).max() < 0.06
        # E W_ij^2 is the same for all off-diagonal entries of a Haar conjugation.
        second = (stack**2).mean(axis=0)[~np.eye(n, dtype=bool)]
        assert second.std() < 0.1 * second.mean()
    np.testing.assert_allclose(
        (samples**2).mean(axis=0), (reference**2).mean(axis=0), rtol=0.15, atol=0.02
    )


# ---------------------------------------------------------------------------------------------
# m23_: determinism, dtypes, devices, convolutions
# ---------------------------------------------------------------------------------------------


def test_key_is_deterministic_and_leaves_global_rng_alone() -> None:
    state = torch.get_rng_state()
    a = m23_(torch.empty(33, 17), key=("layer", 1))
    b = m23_(torch.empty(33, 17), key=("layer", 1))
    c = m23_(torch.empty(33, 17), key=("layer", 2))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    gen = torch.Generator().manual_seed(5)
    d = m23_(torch.empty(33, 17), generator=gen)
    e = m23_(torch.empty(33, 17), generator=torch.Generator().manual_seed(5))
    assert torch.equal(d, e)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_dtype_and_device_preserved(dtype: torch.dtype, device: str) -> None:
    tensor = torch.empty(48, 48, dtype=dtype, device=device)
    out = m23_(tensor, scale="literal", key=0)
    assert out is tensor
    assert out.dtype == dtype and out.device == torch.device(device)
    expected = generate_m23_stable_spectrum(48, size=48)
    tol = {torch.float64: 1e-12, torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 2e-2}
    assert match_error(eigenvalues(out), expected) < tol[dtype]
    if dtype in (torch.float16, torch.bfloat16):
        reference = m23_(torch.empty(48, 48, device=device), scale="literal", key=0)
        assert torch.equal(out, reference.to(dtype))


def test_requires_grad_parameter_is_filled_without_graph() -> None:
    param = nn.Parameter(torch.empty(8, 8))
    m23_(param, key=0)
    assert param.requires_grad and param.grad_fn is None


@pytest.mark.parametrize("conv_mode", ["flatten", "delta"])
def test_conv_weight_layouts(conv_mode: str) -> None:
    conv = nn.Conv2d(6, 8, 3, groups=2)
    m23_(conv.weight, groups=2, conv_mode=conv_mode, key=0)
    convt = nn.ConvTranspose2d(6, 8, 3, groups=2)  # weight (6, 4, 3, 3)
    m23_(convt.weight, groups=2, transposed=True, conv_mode=conv_mode, key=0)
    # The forward map's matrix of each group: (out / g, in / g * 9) or its centre tap.
    regular = [conv.weight[4 * g : 4 * (g + 1)] for g in range(2)]
    transposed = [convt.weight[3 * g : 3 * (g + 1)].transpose(0, 1) for g in range(2)]
    for group in regular + transposed:  # (4, 3, 3, 3)
        if conv_mode == "flatten":
            matrix = group.reshape(4, 27)
            expected = scaled_spectrum(4, fan_in=3, scale="norm")  # norm: per input channel
        else:
            mask = torch.zeros(3, 3, dtype=torch.bool)
            mask[1, 1] = True
            assert torch.all(group[:, :, ~mask] == 0)
            matrix = group[:, :, 1, 1]
            expected = scaled_spectrum(3, fan_in=3, scale="norm")
        np.testing.assert_allclose(
            np.sort(singular_values(matrix)), np.sort(np.abs(expected)), rtol=1e-5
        )
    # The two groups have different bases.
    assert not torch.allclose(regular[0], regular[1])


def test_delta_square_conv_has_the_eigenvalues() -> None:
    weight = m23_(torch.empty(16, 16, 3, 3), conv_mode="delta", scale="literal", key=0)
    expected = generate_m23_stable_spectrum(16, size=16)
    assert match_error(eigenvalues(weight[:, :, 1, 1]), expected) < 1e-5


def test_conv_literal_scale_uses_matrix_columns() -> None:
    weight = m23_(torch.empty(16, 8, 3, 3), scale="literal", key=0)
    assert singular_values(weight.reshape(16, 72)).max() == pytest.approx(
        math.sqrt(2 / 72), rel=1e-5
    )


@pytest.mark.parametrize("conv_mode", ["flatten", "delta"])
def test_conv_norm_mode_preserves_feature_map_energy(conv_mode: str) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 16, 3, padding=1, padding_mode="circular", bias=False)
    gain = math.sqrt(2)
    m23_(conv.weight, gain=gain, conv_mode=conv_mode, key=0)
    x = torch.randn(8, 16, 32, 32)
    with torch.no_grad():
        ratio = conv(x).pow(2).sum() / x.pow(2).sum()
    assert float(ratio) == pytest.approx(gain**2, rel=0.05)


def test_conv_transpose_norm_mode_preserves_energy() -> None:
    torch.manual_seed(0)
    convt = nn.ConvTranspose2d(16, 8, 2, stride=2, bias=False)  # no overlap: exact
    m23_(convt.weight, transposed=True, key=0)
    x = torch.randn(8, 16, 16, 16)
    with torch.no_grad():
        ratio = convt(x).pow(2).sum() / x.pow(2).sum()
    assert float(ratio) == pytest.approx(1.0, rel=0.05)


# ---------------------------------------------------------------------------------------------
# Models: init_model and model.apply(apply_m23_init)
# ---------------------------------------------------------------------------------------------


class Mixed(nn.Module):
    """One of every supported module, and some unsupported ones."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(12, 16)
        self.lin_sq = nn.Linear(16, 16)
        self.conv1 = nn.Conv1d(4, 6, 3)
        self.conv2 = nn.Conv2d(4, 8, 3, groups=2)
        self.conv3 = nn.Conv3d(2, 4, (1, 3, 3))
        self.convt1 = nn.ConvTranspose1d(6, 4, 3)
        self.convt2 = nn.ConvTranspose2d(8, 4, 4, stride=2, groups=2)
        self.convt3 = nn.ConvTranspose3d(4, 2, 3)
        self.mha = nn.MultiheadAttention(16, 4)
        self.mha_kv = nn.MultiheadAttention(16, 2, kdim=8, vdim=12)
        self.encoder = nn.TransformerEncoderLayer(16, 2, 32)
        self.block = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 16))
        self.norm = nn.LayerNorm(16)
        self.bn = nn.BatchNorm2d(8)
        self.emb = nn.Embedding(10, 16)


SUPPORTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.MultiheadAttention)
SUPPORTED += (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def _weights_and_biases(
    model: nn.Module,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    weights, biases = {}, {}
    for name, module in model.named_modules():
        if not isinstance(module, SUPPORTED):
            continue
        for pname, param in module.named_parameters(recurse=False):
            if param is None or pname in ("bias_k", "bias_v"):
                continue
            full = f"{name}.{pname}"
            (biases if "bias" in pname else weights)[full] = param.detach().clone()
    return weights, biases


def _untouched(model: nn.Module) -> dict[str, torch.Tensor]:
    return {
        name: p.detach().clone()
        for name, p in model.named_parameters()
        if name.startswith(("norm.", "bn.", "emb.")) or "norm1" in name or "norm2" in name
    }


@pytest.mark.parametrize("how", ["init_model", "apply"])
def test_mixed_model_every_weight_changed_biases_zero(how: str) -> None:
    torch.manual_seed(0)
    model = Mixed()
    before, _ = _weights_and_biases(model)
    others = _untouched(model)
    assert len(before) >= 18
    if how == "init_model":
        init_model(model)
    else:
        model.apply(apply_m23_init)
    after, biases = _weights_and_biases(model)
    assert after.keys() == before.keys()
    for name in before:
        assert not torch.allclose(before[name], after[name]), name
        assert torch.isfinite(after[name]).all(), name
    assert len(biases) >= 13
    for name, bias in biases.items():
        assert torch.count_nonzero(bias) == 0, name
    for name, value in _untouched(model).items():
        assert torch.equal(value, others[name]), name


def test_mha_in_proj_chunks_are_square_m23_with_distinct_bases() -> None:
    mha = nn.MultiheadAttention(32, 4)
    init_model(mha, scale="literal")
    chunks = mha.in_proj_weight.detach().split(32)
    expected = generate_m23_stable_spectrum(32, size=32)
    for chunk in chunks:
        assert match_error(eigenvalues(chunk), expected) < 1e-5
    assert not torch.allclose(chunks[0], chunks[1])
    assert not torch.allclose(chunks[1], chunks[2])
    assert match_error(eigenvalues(mha.out_proj.weight), expected) < 1e-5


@pytest.mark.parametrize("how", ["init_model", "apply"])
def test_same_shape_layers_get_different_bases(how: str) -> None:
    model = nn.Sequential(nn.Linear(32, 32), nn.Sequential(nn.Linear(32, 32), nn.Linear(32, 32)))
    if how == "init_model":
        init_model(model)
    else:
        model.apply(apply_m23_init)
    weights = [m.weight.detach() for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(weights) == 3
    for i in range(3):
        for j in range(i + 1, 3):
            assert not torch.allclose(weights[i], weights[j])


def test_apply_equals_init_model_bit_for_bit() -> None:
    torch.manual_seed(1)
    a = Mixed()
    torch.manual_seed(2)  # different default init: must not matter
    b = Mixed()
    init_model(a, seed=3, gain=1.5)
    b.apply(functools.partial(apply_m23_init, seed=3, gain=1.5))
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        if name.startswith(("norm.", "bn.", "emb.")) or "norm" in name or "bias_" in name:
            continue
        assert torch.equal(pa, pb), name


def test_direct_call_keys_on_empty_name() -> None:
    a, b = nn.Linear(8, 8), nn.Linear(8, 8)
    apply_m23_init(a)
    init_model(b)
    assert torch.equal(a.weight, b.weight)


def test_seed_and_options_change_the_weights() -> None:
    base = init_model(nn.Linear(16, 16), seed=0).weight.detach()
    assert not torch.allclose(base, init_model(nn.Linear(16, 16), seed=1).weight)
    assert not torch.allclose(base, init_model(nn.Linear(16, 16), root_index=2).weight)


def test_gain_callable_per_module() -> None:
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64))
    seen: list[str] = []

    def gain(name: str, module: nn.Module) -> float:
        seen.append(name)
        return calculate_gain("relu") if name == "0" else 1.0

    init_model(model, gain=gain)
    assert seen == ["0", "2"]
    assert model[0].weight.pow(2).sum().item() == pytest.approx(2 * 64, rel=1e-5)
    assert model[2].weight.pow(2).sum().item() == pytest.approx(64, rel=1e-5)


def test_calculate_gain_matches_torch() -> None:
    for name in ["linear", "conv2d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"]:
        assert calculate_gain(name) == pytest.approx(nn.init.calculate_gain(name)), name
    assert calculate_gain("leaky_relu", 0.2) == pytest.approx(
        nn.init.calculate_gain("leaky_relu", 0.2)
    )


DETERMINISM_SCRIPT = """
import hashlib, json, torch
from torch import nn
from m23init import apply_m23_init, init_model, m23_, mgi_init_stable

def digest(model):
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        h.update(name.encode()); h.update(p.detach().numpy().tobytes())
    return h.hexdigest()

def build():
    return nn.Sequential(
        nn.Linear(24, 24), nn.Linear(24, 24), nn.Conv2d(3, 8, 3),
        nn.TransformerEncoderLayer(16, 2, 32), nn.Linear(24, 40),
    )

a = init_model(build(), seed=5)
b = build().apply(apply_m23_init)
t = m23_(torch.empty(300, 200), key=("k", 1))
result = {
    "init_model": digest(a),
    "apply": digest(b),
    "m23_": hashlib.sha256(t.numpy().tobytes()).hexdigest(),
    "numpy": hashlib.sha256(mgi_init_stable((30, 20), seed=9).tobytes()).hexdigest(),
}
"""


def test_bit_identical_in_a_new_process() -> None:
    # Bit-identity holds for the same device, thread count and library versions (BLAS results
    # may depend on the number of threads), so the child uses this process's thread count.
    threads = f"import torch; torch.set_num_threads({torch.get_num_threads()})\n"
    script = threads + DETERMINISM_SCRIPT + "\nprint(json.dumps(result))\n"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    env["PYTHONHASHSEED"] = "random"
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    torch.manual_seed(12345)  # a different global RNG state must not matter
    namespace: dict[str, object] = {}
    exec(DETERMINISM_SCRIPT, namespace)
    ours = namespace["result"]
    assert ours == theirs


def test_import_does_not_import_torch() -> None:
    code = "import sys, m23init; m23init.mgi_init_stable((4, 4)); print('torch' in sys.modules)"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert proc.stdout.strip() == "False"
    assert m23init.m23_ is m23_  # lazy attribute resolves to the torch helper


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: m23_(torch.empty(0, 4)), "empty"),
        (lambda: m23_(torch.empty(4)), "at least 2 dimensions"),
        (lambda: m23_(torch.empty(4, 4, dtype=torch.int64)), "floating"),
        (lambda: m23_(torch.empty(4, 4), scale="kaiming"), "scale"),
        (lambda: m23_(torch.empty(4, 4, 3), conv_mode="dirac"), "conv_mode"),
        (lambda: m23_(torch.empty(4, 4), gain=-1.0), "gain"),
        (lambda: m23_(torch.empty(4, 4), gain=float("nan")), "gain"),
        (lambda: m23_(torch.empty(4, 4), root_index=4), "root_index"),
        (lambda: m23_(torch.empty(6, 4, 3), groups=4), "groups"),
        (lambda: m23_(torch.empty(4, 4), key=1, generator=torch.Generator()), "key or generator"),
        (lambda: mgi_init_stable((0, 5)), "matrix_shape"),
        (lambda: mgi_init_stable((5,)), "matrix_shape"),
        (lambda: mgi_init_stable((2, 3, 4)), "matrix_shape"),
        (lambda: mgi_init_stable((4, 4), scale="Norm"), "scale"),
        (lambda: mgi_init_stable((4, 4), gain=-0.5), "gain"),
        (lambda: generate_m23_stable_spectrum(0), "fan_in"),
        (lambda: generate_m23_stable_spectrum(8, size=0), "size"),
        (lambda: generate_m23_stable_spectrum(8, root_index=-1), "root_index"),
        (lambda: init_model(nn.Linear(2, 2), conv_mode="x"), "conv_mode"),
        (lambda: init_model(nn.Linear(2, 2), gain=lambda n, m: -1.0), "gain"),
        (lambda: apply_m23_init(nn.ReLU(), scale="x"), "scale"),
        (lambda: calculate_gain("swish"), "nonlinearity"),
    ],
)
def test_value_errors(call: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()  # type: ignore[operator]


def test_bad_key_type() -> None:
    with pytest.raises(TypeError, match="key"):
        m23_(torch.empty(4, 4), key=1.5)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# The write-up
# ---------------------------------------------------------------------------------------------


def test_writeup_basic_initialization() -> None:
    from m23init import generate_m23_stable_spectrum, mgi_init_stable

    spectrum = generate_m23_stable_spectrum(fan_in=512)
    W = mgi_init_stable((256, 512))
    assert spectrum.shape == (23,)
    assert W.shape == (256, 512) and W.dtype == np.float32
    s = singular_values(W)
    assert s.max() / s.min() == pytest.approx(17.59, abs=0.01)


def test_writeup_pytorch_integration() -> None:
    from m23init import apply_m23_init

    model = nn.Sequential(nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))
    model.apply(apply_m23_init)
    assert torch.count_nonzero(model[0].bias) == 0
    s = singular_values(model[0].weight)
    assert s.max() / s.min() == pytest.approx(17.59, abs=0.01)
    assert torch.isfinite(model(torch.randn(4, 512))).all()


def test_literal_scale_vanishes_and_norm_scale_keeps_the_signal() -> None:
    from m23init.bench import signal_propagation

    literal = signal_propagation(depth=10, width=256, scale="literal", gain=1.0, seed=0)
    norm = signal_propagation(depth=10, width=256, scale="norm", gain=math.sqrt(2), seed=0)
    assert literal < 1e-12
    assert 0.8 < norm < 1.25


def test_ultra_deep_transformer_144_layers() -> None:
    """The write-up's UltraDeepTransformer: 144 encoder layers of d_model 512 (454M weights)."""
    layer = nn.TransformerEncoderLayer(d_model=512, nhead=8, dim_feedforward=2048)
    model = nn.TransformerEncoder(layer, num_layers=144, enable_nested_tensor=False)
    start = time.perf_counter()
    model.apply(apply_m23_init)
    elapsed = time.perf_counter() - start
    first, last = model.layers[0], model.layers[143]
    assert not torch.equal(first.linear1.weight, last.linear1.weight)
    assert torch.count_nonzero(last.self_attn.in_proj_bias) == 0
    s = singular_values(last.linear1.weight)
    assert s.max() / s.min() == pytest.approx(17.59, abs=0.01)
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(8, 2, 512))  # (seq, batch, d_model)
    assert out.shape == (8, 2, 512)
    assert torch.isfinite(out).all()
    print(f"144-layer init: {elapsed:.1f} s")
