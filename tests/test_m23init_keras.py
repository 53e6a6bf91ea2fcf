"""Tests of m23init.keras_init (Keras 3), and the same spectrum in PyTorch, JAX and Keras.

Keras fixes its backend when it is first imported: this module runs under ``KERAS_BACKEND``
(default ``torch``, set here before the import), and :func:`test_under_the_other_backend` runs
it again in a subprocess under the other one of ``torch`` and ``jax``.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

# Before keras is imported: the backend is fixed per process. One XLA CPU thread for the JAX
# backend (the work is small, the CPU shared).
os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)
keras = pytest.importorskip(
    "keras", reason="keras is not installed: pip install 'm23-spectrum[keras]'"
)

import m23init  # noqa: E402
from m23init import (  # noqa: E402
    M23Keras,
    generate_m23_stable_spectrum,
    m23_,
    scaled_spectrum,
)
from tests.test_m23init import match_error  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BACKEND = keras.backend.backend()

# Keras's torch backend converts with np.array(tensor), which NumPy 2 warns about (not ours).
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def readme_block(tag: str) -> str:
    """The README's fenced code block opened with ```` ```python TAG ````."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(rf"^```python {tag}\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)
    assert len(blocks) == 1, f"README.md needs exactly one ```python {tag} block"
    return str(blocks[0])


def to_numpy(tensor: object) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype=np.float64)


def group_matrices(
    kernel: np.ndarray, *, groups: int, transposed: bool, conv_mode: str
) -> list[np.ndarray]:
    """The forward matrices of a ``(*k, in / groups, out)`` (or ``(*k, out / groups, in)``) kernel.

    ``"flatten"``: ``(out / groups, in / groups * prod(k))`` per group; ``"delta"``: the
    centre-tap ``(out / groups, in / groups)``. float64.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    nk = kernel.ndim - 2
    width = kernel.shape[-1] // groups
    out = []
    for g in range(groups):
        block = kernel[..., g * width : (g + 1) * width]
        block = np.moveaxis(block, (nk, nk + 1), (0, 1) if transposed else (1, 0))
        if conv_mode == "delta" and nk:
            out.append(block[(slice(None), slice(None), *(s // 2 for s in kernel.shape[:nk]))])
        else:
            out.append(block.reshape(block.shape[0], -1))
    return out


def torch_group_matrices(
    weight: torch.Tensor, *, groups: int, transposed: bool, conv_mode: str
) -> list[np.ndarray]:
    """The same for a PyTorch weight ``(out, in / groups, *k)`` or ``(in, out / groups, *k)``."""
    w = weight.detach().double().numpy()
    nk = w.ndim - 2
    per = w.shape[0] // groups
    out = []
    for g in range(groups):
        block = w[g * per : (g + 1) * per]
        if transposed:
            block = np.swapaxes(block, 0, 1)
        if conv_mode == "delta" and nk:
            out.append(block[(slice(None), slice(None), *(s // 2 for s in w.shape[2:]))])
        else:
            out.append(block.reshape(block.shape[0], -1))
    return out


def singular_values(matrix: np.ndarray) -> np.ndarray:
    return np.sort(np.linalg.svd(np.asarray(matrix, dtype=np.float64), compute_uv=False))


def test_backend() -> None:
    assert BACKEND == os.environ["KERAS_BACKEND"]


# ---------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------

LAYERS = [
    # (layer factory, input shape without batch, options, in channels per group)
    (lambda init: keras.layers.Dense(24, kernel_initializer=init), (40,), {}, 40),
    (lambda init: keras.layers.Dense(40, kernel_initializer=init), (24,), {}, 24),
    (lambda init: keras.layers.Conv1D(8, 3, kernel_initializer=init), (10, 6), {}, 6),
    (
        lambda init: keras.layers.Conv2D(8, 3, groups=2, kernel_initializer=init),
        (10, 10, 6),
        {"groups": 2},
        3,
    ),
    (
        lambda init: keras.layers.Conv2D(8, 3, groups=2, kernel_initializer=init),
        (10, 10, 6),
        {"groups": 2, "conv_mode": "delta"},
        3,
    ),
    (
        lambda init: keras.layers.Conv2DTranspose(6, 3, strides=2, kernel_initializer=init),
        (5, 5, 8),
        {"transposed": True},
        8,
    ),
    (
        lambda init: keras.layers.Conv3D(4, 3, kernel_initializer=init),
        (5, 5, 5, 2),
        {"conv_mode": "delta"},
        2,
    ),
]


@pytest.mark.parametrize(("make", "input_shape", "options", "in_g"), LAYERS)
@pytest.mark.parametrize("scale", ["norm", "literal"])
def test_layer_kernels_have_the_spectrum(
    make: Callable[[object], object],
    input_shape: tuple[int, ...],
    options: dict[str, object],
    in_g: int,
    scale: str,
) -> None:
    layer = make(M23Keras(scale=scale, seed=0, **options))  # type: ignore[arg-type]
    layer.build((None, *input_shape))  # type: ignore[attr-defined]
    kernel = to_numpy(layer.kernel)  # type: ignore[attr-defined]
    groups = int(options.get("groups", 1))  # type: ignore[call-overload]
    conv_mode = str(options.get("conv_mode", "flatten"))
    matrices = group_matrices(
        kernel, groups=groups, transposed=bool(options.get("transposed")), conv_mode=conv_mode
    )
    for matrix in matrices:
        rows, cols = matrix.shape
        fan_in = cols if scale == "literal" else in_g
        expected = np.abs(scaled_spectrum(min(rows, cols), fan_in=fan_in, scale=scale))
        np.testing.assert_allclose(singular_values(matrix), np.sort(expected), rtol=2e-5)
    if conv_mode == "delta":
        mask = np.ones(kernel.shape[:-2], dtype=bool)
        mask[tuple(s // 2 for s in kernel.shape[:-2])] = False
        assert np.all(kernel[mask] == 0)
    if groups > 1:
        assert not np.allclose(matrices[0], matrices[1])


def test_square_dense_has_the_eigenvalues() -> None:
    kernel = to_numpy(M23Keras(scale="literal", seed=3)((33, 33)))
    assert match_error(np.linalg.eigvals(kernel), generate_m23_stable_spectrum(33, size=33)) < 1e-5


def test_model_forward_keeps_the_norm() -> None:
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(48, use_bias=False, kernel_initializer=M23Keras())]
    )
    x = np.random.default_rng(0).standard_normal((2000, 64)).astype(np.float32)
    y = to_numpy(model(x))
    ratio = float(np.mean(np.sum(y**2, axis=1) / np.sum(x.astype(np.float64) ** 2, axis=1)))
    assert ratio == pytest.approx(1.0, rel=0.05)


# ---------------------------------------------------------------------------------------------
# Seeds, dtypes, serialization
# ---------------------------------------------------------------------------------------------


def test_seeds_follow_keras() -> None:
    shape = (3, 3, 4, 8)
    same = to_numpy(M23Keras(seed=5)(shape)), to_numpy(M23Keras(seed=5)(shape))
    np.testing.assert_array_equal(*same)
    init = M23Keras(seed=5)
    np.testing.assert_array_equal(to_numpy(init(shape)), to_numpy(init(shape)))
    assert not np.allclose(same[0], to_numpy(M23Keras(seed=6)(shape)))
    generator = M23Keras(seed=keras.random.SeedGenerator(1))  # new bases at every call
    assert not np.allclose(to_numpy(generator(shape)), to_numpy(generator(shape)))
    state = random.getstate()
    try:
        random.seed(0)
        first = M23Keras()
        random.seed(0)
        second = M23Keras()
    finally:
        random.setstate(state)
    np.testing.assert_array_equal(to_numpy(first(shape)), to_numpy(second(shape)))
    assert first.get_config()["seed"] is None


@pytest.mark.filterwarnings("ignore:Explicitly requested dtype float64:UserWarning")
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64", None])
def test_dtypes(dtype: str | None) -> None:
    weight = M23Keras(seed=0)((12, 8), dtype=dtype)
    # What the backend makes of the request (JAX without jax_enable_x64 has no float64).
    expected = keras.backend.standardize_dtype(keras.ops.zeros((), dtype=dtype).dtype)
    assert keras.backend.standardize_dtype(weight.dtype) == expected
    if expected == "float64":  # built in float64, from other random numbers
        spectrum = np.abs(scaled_spectrum(8, fan_in=12))
        np.testing.assert_allclose(singular_values(to_numpy(weight)), np.sort(spectrum), rtol=1e-10)
    else:  # built in float32 and cast
        reference = to_numpy(M23Keras(seed=0)((12, 8)))
        np.testing.assert_allclose(to_numpy(weight), reference, rtol=1e-2, atol=1e-3)


def test_config_round_trip() -> None:
    init = M23Keras(scale="literal", gain=2.0, conv_mode="delta", root_index=1, groups=2, seed=7)
    config = init.get_config()
    assert config == {
        "scale": "literal",
        "gain": 2.0,
        "conv_mode": "delta",
        "root_index": 1,
        "groups": 2,
        "transposed": False,
        "seed": 7,
    }
    clone = M23Keras.from_config(config)
    np.testing.assert_array_equal(to_numpy(clone((3, 3, 4, 8))), to_numpy(init((3, 3, 4, 8))))
    restored = keras.initializers.deserialize(keras.initializers.serialize(init))
    assert isinstance(restored, M23Keras) and restored.get_config() == config
    generator = M23Keras(seed=keras.random.SeedGenerator(3))
    assert isinstance(M23Keras.from_config(generator.get_config()).seed, keras.random.SeedGenerator)


def test_saved_model_loads(tmp_path: Path) -> None:
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(4, kernel_initializer=M23Keras(gain=0.5, seed=1))]
    )
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    initializer = loaded.layers[0].kernel_initializer
    assert isinstance(initializer, M23Keras) and initializer.get_config()["gain"] == 0.5
    np.testing.assert_array_equal(
        to_numpy(loaded.layers[0].kernel), to_numpy(model.layers[0].kernel)
    )


# ---------------------------------------------------------------------------------------------
# The same spectrum in PyTorch, JAX and Keras
# ---------------------------------------------------------------------------------------------

FRAMEWORK_CASES = [
    # (torch weight shape, kernel shape for JAX/Keras, options)
    ((24, 40), (40, 24), {}),
    ((16, 16), (16, 16), {"scale": "literal"}),
    ((8, 3, 3, 3), (3, 3, 3, 8), {"groups": 2}),
    ((8, 6, 3, 3), (3, 3, 6, 8), {"conv_mode": "delta", "gain": 2.0}),
    ((8, 3, 3, 3), (3, 3, 3, 8), {"groups": 2, "transposed": True}),  # ConvTranspose
    ((6, 4, 5), (5, 4, 6), {"scale": "literal", "root_index": 2}),
]


@pytest.mark.parametrize(("torch_shape", "kernel_shape", "options"), FRAMEWORK_CASES)
def test_same_spectrum_in_torch_jax_and_keras(
    torch_shape: tuple[int, ...], kernel_shape: tuple[int, ...], options: dict[str, object]
) -> None:
    groups = int(options.get("groups", 1))  # type: ignore[call-overload]
    transposed = bool(options.get("transposed", False))
    conv_mode = str(options.get("conv_mode", "flatten"))
    layout = {"groups": groups, "transposed": transposed, "conv_mode": conv_mode}
    results = {
        "torch": torch_group_matrices(
            m23_(torch.empty(torch_shape), key=0, **options),
            **layout,  # type: ignore[arg-type]
        ),
        "keras": group_matrices(to_numpy(M23Keras(seed=0, **options)(kernel_shape)), **layout),
    }
    try:
        import jax

        init = m23init.m23_jax(**options)  # type: ignore[arg-type]
        results["jax"] = group_matrices(np.asarray(init(jax.random.key(0), kernel_shape)), **layout)
    except ImportError:
        pass  # compared without JAX when it is not installed
    reference = [singular_values(m) for m in results["torch"]]
    for name, matrices in results.items():
        assert [m.shape for m in matrices] == [m.shape for m in results["torch"]], name
        for matrix, expected in zip(matrices, reference):
            np.testing.assert_allclose(singular_values(matrix), expected, rtol=2e-5, err_msg=name)
        if matrices[0].shape[0] == matrices[0].shape[1]:  # square: the same eigenvalues
            eig = [np.linalg.eigvals(m) for m in matrices]
            for values, expected_matrix in zip(eig, results["torch"]):
                assert match_error(values, np.linalg.eigvals(expected_matrix)) < 1e-5, name


# ---------------------------------------------------------------------------------------------
# Errors, imports, README, the other backend
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: M23Keras(seed=0)((4,)), "shape"),
        (lambda: M23Keras(seed=0)((0, 4)), "shape"),
        (lambda: M23Keras(seed=0)((None, 4)), "shape"),
        (lambda: M23Keras(seed=0)((4, 4), dtype="int32"), "dtype"),
        (lambda: M23Keras(seed=0, groups=4)((3, 3, 4, 6)), "groups"),
        (lambda: M23Keras(scale="kaiming"), "scale"),
        (lambda: M23Keras(conv_mode="dirac"), "conv_mode"),
        (lambda: M23Keras(gain=-1.0), "gain"),
        (lambda: M23Keras(gain=float("inf")), "gain"),
        (lambda: M23Keras(root_index=-1), "root_index"),
        (lambda: M23Keras(groups=0), "groups"),
        (lambda: M23Keras(seed="abc"), "seed"),  # type: ignore[arg-type]
        (lambda: M23Keras(seed=1.5), "seed"),  # type: ignore[arg-type]
    ],
)
def test_value_errors(call: Callable[[], object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def _import_error(blocked: str, backend: str) -> tuple[str, str]:
    """Runs ``import m23init; m23init.M23Keras`` in a new process where ``import BLOCKED`` fails.

    Returns:
        The framework modules that ``import m23init`` imported, and the ImportError's message.
    """
    code = (
        f"import sys; sys.modules[{blocked!r}] = None\n"  # makes `import BLOCKED` fail
        "import m23init\n"
        "print(sorted(m for m in ('jax', 'keras', 'torch') if sys.modules.get(m)))\n"
        "try:\n"
        "    m23init.M23Keras\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, "KERAS_BACKEND": backend}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    imported, message = proc.stdout.strip().splitlines()[-2:]
    return imported, message


def test_missing_keras_names_the_extra() -> None:
    imported, message = _import_error("keras", BACKEND)
    assert imported == "[]"  # import m23init imports neither jax, keras nor torch
    assert "pip install 'm23-spectrum[keras]'" in message
    assert m23init.M23Keras is M23Keras


def test_missing_keras_backend_says_so() -> None:
    imported, message = _import_error("tensorflow", "tensorflow")
    assert "KERAS_BACKEND" in message and "tensorflow" in message


def test_readme_example() -> None:
    namespace: dict[str, object] = {}
    exec(readme_block("keras"), namespace)
    model = namespace["model"]
    assert isinstance(model, keras.Model) and model.output_shape == (None, 10)


OTHER_BACKEND = "jax" if BACKEND == "torch" else "torch"


def test_under_the_other_backend() -> None:
    pytest.importorskip(OTHER_BACKEND, reason=f"{OTHER_BACKEND} is not installed")
    env = {**os.environ, "KERAS_BACKEND": OTHER_BACKEND}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "not test_under_the_other_backend and not test_missing",
            str(Path(__file__).relative_to(REPO)),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert re.search(r"\d+ passed", proc.stdout), proc.stdout[-2000:]
