"""Tests of m23init.jax_init: the JAX initializer with the signature of jax.nn.initializers."""

from __future__ import annotations

import hashlib
import math
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

# One XLA CPU thread (set before JAX starts its CPU backend): the work is small, the CPU shared.
os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)
jax = pytest.importorskip("jax", reason="jax is not installed: pip install 'm23-spectrum[jax]'")
import jax.numpy as jnp  # noqa: E402

import m23init  # noqa: E402
from m23init import generate_m23_stable_spectrum, m23_jax, scaled_spectrum  # noqa: E402
from tests.test_m23init import match_error  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def readme_block(tag: str) -> str:
    """The README's fenced code block opened with ```` ```python TAG ````."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(rf"^```python {tag}\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)
    assert len(blocks) == 1, f"README.md needs exactly one ```python {tag} block"
    return str(blocks[0])


def group_matrices(
    kernel: np.ndarray, *, groups: int, transposed: bool, conv_mode: str
) -> list[np.ndarray]:
    """The forward matrices of a ``(*k, in / groups, out)`` (or ``(*k, out, in)``) kernel.

    ``"flatten"``: ``(out / groups, in / groups * prod(k))`` per group; ``"delta"``: the
    centre-tap ``(out / groups, in / groups)``. float64.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    nk = kernel.ndim - 2
    width = kernel.shape[-1] // groups
    out = []
    for g in range(groups):
        block = kernel[..., g * width : (g + 1) * width]
        # -> (out_g, in_g, *k)
        block = np.moveaxis(block, (nk, nk + 1), (0, 1) if transposed else (1, 0))
        if conv_mode == "delta" and nk:
            out.append(block[(slice(None), slice(None), *(s // 2 for s in kernel.shape[:nk]))])
        else:
            out.append(block.reshape(block.shape[0], -1))
    return out


def singular_values(matrix: np.ndarray) -> np.ndarray:
    return np.sort(np.linalg.svd(np.asarray(matrix, dtype=np.float64), compute_uv=False))


CASES = [
    # (shape, options): dense, rectangular both ways, conv 1-D/2-D/3-D, groups, transposed
    ((24, 24), {}),
    ((40, 24), {}),
    ((24, 40), {}),
    ((3, 6, 8), {}),
    ((3, 3, 6, 8), {"groups": 2}),
    ((3, 3, 6, 8), {"groups": 2, "conv_mode": "delta"}),
    ((3, 3, 8, 6), {"groups": 2, "transposed": True}),
    ((3, 3, 8, 6), {"groups": 2, "transposed": True, "conv_mode": "delta"}),
    ((2, 3, 3, 4, 5), {"conv_mode": "delta"}),
    ((1, 1, 16, 16), {"scale": "literal"}),
]


# ---------------------------------------------------------------------------------------------
# Smoke, cardinality
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("shape", "options"), CASES)
def test_smoke_shape_dtype_finite(shape: tuple[int, ...], options: dict[str, object]) -> None:
    weight = m23_jax(**options)(jax.random.key(0), shape)  # type: ignore[arg-type]
    assert isinstance(weight, jax.Array)
    assert weight.shape == shape and weight.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(weight)))


@pytest.mark.parametrize(("shape", "options"), CASES)
@pytest.mark.parametrize("scale", ["norm", "literal"])
def test_singular_values_are_the_scaled_spectrum(
    shape: tuple[int, ...], options: dict[str, object], scale: str
) -> None:
    options = {**options, "scale": scale}
    weight = np.asarray(m23_jax(**options)(jax.random.key(1), shape))  # type: ignore[arg-type]
    groups = int(options.get("groups", 1))  # type: ignore[call-overload]
    conv_mode = str(options.get("conv_mode", "flatten"))
    transposed = bool(options.get("transposed", False))
    matrices = group_matrices(weight, groups=groups, transposed=transposed, conv_mode=conv_mode)
    for matrix in matrices:
        rows, cols = matrix.shape
        in_g = shape[-1] // groups if transposed else shape[-2]
        fan_in = cols if scale == "literal" else in_g
        expected = np.abs(scaled_spectrum(min(rows, cols), fan_in=fan_in, scale=scale))
        np.testing.assert_allclose(singular_values(matrix), np.sort(expected), rtol=2e-5)
    if conv_mode == "delta" and len(shape) > 2:
        centre = tuple(s // 2 for s in shape[:-2])
        mask = np.ones(shape[:-2], dtype=bool)
        mask[centre] = False
        assert np.all(weight[mask] == 0)
    if groups > 1:  # each group has its own basis
        assert not np.allclose(matrices[0], matrices[1])


def test_square_dense_has_the_eigenvalues() -> None:
    weight = m23_jax(scale="literal")(jax.random.key(2), (33, 33))
    # y = x @ kernel: the forward matrix is kernel.T, with the same eigenvalues.
    computed = np.linalg.eigvals(np.asarray(weight, dtype=np.float64))
    assert match_error(computed, generate_m23_stable_spectrum(33, size=33)) < 1e-5


def test_delta_square_conv_has_the_eigenvalues() -> None:
    weight = m23_jax(conv_mode="delta", scale="literal")(jax.random.key(3), (3, 3, 16, 16))
    computed = np.linalg.eigvals(np.asarray(weight[1, 1], dtype=np.float64))
    assert match_error(computed, generate_m23_stable_spectrum(16, size=16)) < 1e-5


# ---------------------------------------------------------------------------------------------
# Keys, jit, dtypes
# ---------------------------------------------------------------------------------------------


def test_key_decides_the_basis() -> None:
    init = m23_jax()
    a = init(jax.random.key(7), (3, 3, 8, 16))
    b = init(jax.random.key(7), (3, 3, 8, 16))
    c = init(jax.random.key(8), (3, 3, 8, 16))
    legacy = init(jax.random.PRNGKey(7), (3, 3, 8, 16))  # raw uint32 keys work too
    assert bool(jnp.array_equal(a, b))
    assert not bool(jnp.allclose(a, c))
    assert legacy.shape == a.shape


def test_jit_matches_eager() -> None:
    init = m23_jax(gain=2.0)
    key = jax.random.key(4)
    eager = init(key, (20, 12), jnp.float32)
    jitted = jax.jit(init, static_argnums=(1, 2))(key, (20, 12), jnp.float32)
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32])
def test_dtypes(dtype: object) -> None:
    init = m23_jax()
    weight = init(jax.random.key(0), (12, 8), dtype)
    assert weight.dtype == dtype
    reference = init(jax.random.key(0), (12, 8), jnp.float32)
    np.testing.assert_allclose(
        np.asarray(weight, dtype=np.float32), np.asarray(reference), rtol=1e-2, atol=1e-3
    )
    # The factory's dtype is the default, and positional dtype (as Flax passes it) overrides it.
    assert m23_jax(dtype=jnp.bfloat16)(jax.random.key(0), (4, 4)).dtype == jnp.bfloat16


# ---------------------------------------------------------------------------------------------
# Scales: the norm mode keeps the energy (inputs from NumPy: a large jax.random draw takes
# seconds to compile on the CPU)
# ---------------------------------------------------------------------------------------------


def test_dense_norm_mode_preserves_the_norm() -> None:
    gain = math.sqrt(2.0)
    kernel = m23_jax(gain=gain)(jax.random.key(5), (64, 48))
    x = jnp.asarray(np.random.default_rng(6).standard_normal((4000, 64)), jnp.float32)
    y = jnp.matmul(x, kernel, precision=jax.lax.Precision.HIGHEST)
    ratio = float(jnp.mean(jnp.sum(y**2, axis=1) / jnp.sum(x**2, axis=1)))
    assert ratio == pytest.approx(gain**2, rel=0.05)


@pytest.mark.parametrize("conv_mode", ["flatten", "delta"])
def test_conv_norm_mode_preserves_feature_map_energy(conv_mode: str) -> None:
    gain = math.sqrt(2.0)
    kernel = m23_jax(gain=gain, conv_mode=conv_mode)(jax.random.key(0), (3, 3, 16, 16))
    x = jnp.asarray(np.random.default_rng(1).standard_normal((4, 24, 24, 16)), jnp.float32)
    # A circular 3 x 3 convolution (no borders), y = sum over taps of shifted x @ kernel[tap]:
    # cheaper to compile on the CPU than jax.lax.conv_general_dilated.
    shifted = jnp.stack(
        [jnp.roll(x, (1 - i, 1 - j), axis=(1, 2)) for i in range(3) for j in range(3)]
    )
    y = jnp.einsum(
        "tnhwc,tco->nhwo", shifted, kernel.reshape(9, 16, 16), precision=jax.lax.Precision.HIGHEST
    )
    ratio = float(jnp.sum(y**2) / jnp.sum(x**2))
    assert ratio == pytest.approx(gain**2, rel=0.05)


# ---------------------------------------------------------------------------------------------
# Errors, imports, README
# ---------------------------------------------------------------------------------------------


def _call(shape: object, dtype: object = None, **options: object) -> Callable[[], object]:
    return lambda: m23_jax(**options)(jax.random.key(0), shape, dtype)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (_call((4,)), "shape"),
        (_call((0, 4)), "shape"),
        (_call((4, 2.5)), "shape"),
        (_call(4), "shape"),
        (_call((4, 4), jnp.int32), "dtype"),
        (_call((4, 4), jnp.complex64), "dtype"),
        (_call((3, 3, 4, 6), groups=4), "groups"),
        (lambda: m23_jax(scale="kaiming"), "scale"),
        (lambda: m23_jax(conv_mode="dirac"), "conv_mode"),
        (lambda: m23_jax(gain=-1.0), "gain"),
        (lambda: m23_jax(gain=float("nan")), "gain"),
        (lambda: m23_jax(root_index=4), "root_index"),
        (lambda: m23_jax(groups=0), "groups"),
    ],
)
def test_value_errors(call: Callable[[], object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_out_sharding_is_refused() -> None:
    with pytest.raises(NotImplementedError, match="out_sharding"):
        m23_jax()(jax.random.key(0), (4, 4), None, out_sharding=object())


IMPORT_SCRIPT = """
import hashlib, sys
import m23init
m23init.mgi_init_stable((4, 4))
print(sorted(m for m in ("jax", "keras", "torch") if m in sys.modules))
import jax
w = m23init.m23_jax(conv_mode="delta")(jax.random.key(11), (3, 3, 6, 10))
print(hashlib.sha256(jax.numpy.asarray(w).tobytes()).hexdigest())
"""


def test_lazy_import_and_same_weights_in_a_new_process() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", IMPORT_SCRIPT],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    imported, digest = proc.stdout.strip().splitlines()[-2:]
    assert imported == "[]"  # import m23init imports neither jax, keras nor torch
    ours = m23_jax(conv_mode="delta")(jax.random.key(11), (3, 3, 6, 10))
    assert hashlib.sha256(np.asarray(ours).tobytes()).hexdigest() == digest
    assert m23init.m23_jax is m23_jax


def test_missing_jax_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['jax'] = None\n"  # makes `import jax` fail
        "import m23init\n"
        "try:\n"
        "    m23init.m23_jax\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "pip install 'm23-spectrum[jax]'" in proc.stdout


def test_readme_example() -> None:
    namespace: dict[str, object] = {}
    exec(readme_block("jax"), namespace)
    assert namespace["kernel"].shape == (512, 256)  # type: ignore[attr-defined]
