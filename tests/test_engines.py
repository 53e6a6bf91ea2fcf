"""Engines: model discovery, the shared interface, providers, parity with PyTorch, no torch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from tests.conftest import REPO


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with tiny models under the shipped names (interp_occ4, sr_x2, sr_x4), and
    interp_occ and interp_hybrid_tiny for the other interpolation variants."""
    from models.registry import get_model
    from training.checkpoint import save_checkpoint

    d = tmp_path_factory.mktemp("models")
    for arch, name, task in (("interp_occ4", "interp_occ4", "interp"),
                             ("interp_hybrid_tiny", "interp_hybrid_tiny", "interp"),
                             ("interp_occ", "interp_occ", "interp"),
                             ("sr_tiny_x2", "sr_x2", "sr"), ("sr_tiny_x4", "sr_x4", "sr")):
        save_checkpoint(d / f"ck_{name}", get_model(arch, init_seed=5), arch, None, {"step": 1})
        assert main(["export", task, "--checkpoint", str(d / f"ck_{name}"), "-o",
                     str(d / f"{name}.onnx")]) == 0
        shutil.rmtree(d / f"ck_{name}")
    return d


def _copy(src: Path, dst: Path, stem: str) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for ext in (".onnx", ".json"):
        shutil.copyfile(src.with_suffix(ext), dst / f"{stem}{ext}")
    return dst / f"{stem}.onnx"


def test_find_model_finds_each_kind(models_dir: Path) -> None:
    from app.discovery import find_model

    assert find_model("interp", models_dir=models_dir) == models_dir / "interp_occ4.onnx"
    assert find_model("sr", models_dir=models_dir) == models_dir / "sr_x2.onnx"
    assert find_model("sr", 4, models_dir) == models_dir / "sr_x4.onnx"
    assert find_model("sr", 4, models_dir / "sr_x4.onnx") == models_dir / "sr_x4.onnx"


def test_find_model_by_sidecar_under_another_name(models_dir: Path, tmp_path: Path) -> None:
    from app.discovery import find_model
    from app.engines import EngineError

    mine = _copy(models_dir / "sr_x4", tmp_path, "my_upscaler")
    assert find_model("sr", 4, tmp_path) == mine
    with pytest.raises(EngineError, match="no x2 super-resolution model"):
        find_model("sr", 2, tmp_path)
    _copy(models_dir / "sr_x4", tmp_path, "other")
    with pytest.raises(EngineError, match="several"):
        find_model("sr", 4, tmp_path)


def test_find_model_errors(models_dir: Path, tmp_path: Path) -> None:
    from app.discovery import find_model
    from app.engines import EngineError

    with pytest.raises(EngineError, match="unknown model kind"):
        find_model("depth", models_dir=models_dir)
    with pytest.raises(EngineError, match="factor 3"):
        find_model("sr", 3, models_dir)
    with pytest.raises(EngineError, match="folder not found"):
        find_model("sr", 2, tmp_path / "nope")
    with pytest.raises(EngineError, match="no interpolation model"):
        find_model("interp", models_dir=tmp_path)
    # wrong kind and wrong scale under a shipped name
    bad = tmp_path / "kind"
    _copy(models_dir / "sr_x2", bad, "interp_occ4")
    with pytest.raises(EngineError, match="'sr' model"):
        find_model("interp", models_dir=bad)
    bad = tmp_path / "scale"
    _copy(models_dir / "sr_x2", bad, "sr_x4")
    with pytest.raises(EngineError, match="upscales by 2"):
        find_model("sr", 4, bad)
    # damaged model file: sha256 mismatch
    bad = tmp_path / "damaged"
    p = _copy(models_dir / "sr_x2", bad, "sr_x2")
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(EngineError, match="does not match its metadata"):
        find_model("sr", 2, bad)
    # damaged and missing sidecar
    p.with_suffix(".json").write_text("{not json")
    with pytest.raises(EngineError, match="damaged model metadata"):
        find_model("sr", 2, bad)
    p.with_suffix(".json").unlink()
    with pytest.raises(EngineError, match="metadata file not found"):
        find_model("sr", 2, bad)
    # a sidecar without the file's sha256
    bad = tmp_path / "nosha"
    p = _copy(models_dir / "sr_x2", bad, "sr_x2")
    side = json.loads(p.with_suffix(".json").read_text())
    del side["onnx"]
    p.with_suffix(".json").write_text(json.dumps(side))
    with pytest.raises(EngineError, match="no sha256"):
        find_model("sr", 2, bad)


def test_find_model_errors_are_user_errors(tmp_path: Path) -> None:
    from app.cli import _is_user_error
    from app.discovery import find_model

    with pytest.raises(Exception) as info:
        find_model("sr", 2, tmp_path)
    assert _is_user_error(info.value) and "\n" not in str(info.value)


# --- providers -----------------------------------------------------------------------------

def test_provider_chain() -> None:
    from app.engines import CPU, CUDA, TENSORRT, EngineError, provider_chain

    gpu_build = [TENSORRT, CUDA, CPU]
    assert provider_chain("auto", gpu_build) == [TENSORRT, CUDA, CPU]
    assert provider_chain("auto", [CUDA, CPU]) == [CUDA, CPU]
    assert provider_chain("auto", ["AzureExecutionProvider", CPU]) == [CPU]
    assert provider_chain("cuda", gpu_build) == [CUDA]
    assert provider_chain("tensorrt", gpu_build) == [TENSORRT]
    assert provider_chain("cpu", gpu_build) == [CPU]
    with pytest.raises(EngineError, match="not available"):
        provider_chain("cuda", [CPU])
    with pytest.raises(EngineError, match="unknown provider"):
        provider_chain("metal", gpu_build)


def test_sessions_say_which_provider_runs(models_dir: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    import logging

    import onnxruntime as ort

    from app.engines import CPU, CUDA, EngineError, OnnxInterpolator, create_session
    from app.upscale import OnnxUpscaler

    with caplog.at_level(logging.INFO, logger="app.engines"):
        up = OnnxUpscaler(models_dir / "sr_x2.onnx", provider="auto")
    assert f"sr_x2.onnx runs on {up.provider}" in caplog.text
    if CUDA not in ort.get_available_providers():  # this CPU build: auto is the CPU
        assert up.provider == CPU and up.describe() == f"{CPU} fp32"
        with pytest.raises(EngineError, match="'cuda' is not available"):
            OnnxInterpolator(models_dir / "interp_occ4.onnx", provider="cuda")
    assert create_session(models_dir / "sr_x2.onnx", "cpu", 2).get_providers() == [CPU]
    with pytest.raises(EngineError, match="threads"):
        create_session(models_dir / "sr_x2.onnx", "cpu", -1)


# --- padding, the shared interface ---------------------------------------------------------

def test_pad_to_requirement() -> None:
    from app.engines import pad_to_requirement

    img = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    same, hw = pad_to_requirement(img, 1, 1)
    assert same is img and hw == (5, 7)
    padded, hw = pad_to_requirement(img, 16, 4)
    assert padded.shape == (16, 16, 3) and hw == (5, 7)
    assert (padded[:5, :7] == img).all() and (padded[10, 3] == img[4, 3]).all()
    padded, _ = pad_to_requirement(img, 1, 4)
    assert padded.shape == (8, 8, 3) and (padded[:, 7] == padded[:, 6]).all()
    with pytest.raises(ValueError):
        pad_to_requirement(img, 0, 1)


def test_interpolator_pads_small_frames_and_crops_back(models_dir: Path) -> None:
    from app.engines import OnnxInterpolator, pad_to_requirement
    from tests.conftest import textured

    eng = OnnxInterpolator(models_dir / "interp_occ4.onnx", provider="cpu")
    assert eng.minimum == 16
    f0, f1 = textured(9, 13, seed=1), textured(9, 13, seed=2)
    out = eng.interpolate(f0, f1, [0.25, 0.5, 0.75])
    assert [o.shape for o in out] == [(9, 13, 3)] * 3 and out[0].dtype == np.uint8
    big = eng(pad_to_requirement(f0, 16)[0], pad_to_requirement(f1, 16)[0], [0.25, 0.5, 0.75])
    for a, b in zip(out, big, strict=True):
        assert (a == b[:9, :13]).all()
    with pytest.raises(ValueError, match="times"):
        eng(f0, f1, [1.0])
    with pytest.raises(ValueError, match="uint8"):
        eng(f0, f1[:8], [0.5])


def test_batched_times_equal_single_calls(models_dir: Path) -> None:
    from app.engines import OnnxInterpolator
    from tests.conftest import textured

    eng = OnnxInterpolator(models_dir / "interp_occ4.onnx", provider="cpu")
    f0 = textured(40, 56, seed=3)
    f1 = np.roll(f0, (1, 3), axis=(0, 1))
    batch = eng(f0, f1, [0.25, 0.5, 0.75])
    for t, frame in zip([0.25, 0.5, 0.75], batch, strict=True):
        assert np.abs(eng(f0, f1, [t])[0].astype(int) - frame.astype(int)).max() <= 1
    assert not (batch[0] == batch[2]).all()


# --- fp16 ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fp16_dir(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sr_x2 (fp32) with its fp16 twin sr_x2_fp16.onnx, exported from the same weights."""
    from models.registry import get_model
    from training.checkpoint import save_checkpoint

    d = tmp_path_factory.mktemp("fp16")
    save_checkpoint(d / "ck", get_model("sr_tiny_x2", init_seed=6), "sr_tiny_x2", None, {})
    for extra, name in (([], "sr_x2"), (["--fp16"], "sr_x2_fp16")):
        assert main(["export", "sr", "--checkpoint", str(d / "ck"), "-o",
                     str(d / f"{name}.onnx"), *extra]) == 0
    return d


def test_fp16_twin_runs_when_asked_and_matches_fp32(fp16_dir: Path) -> None:
    from app.upscale import OnnxUpscaler
    from tests.conftest import textured

    img = textured(29, 41, seed=6)
    auto = OnnxUpscaler(fp16_dir / "sr_x2.onnx", provider="cpu")
    assert auto.model.precision == "fp32"  # fp16 is chosen on GPUs only
    half = OnnxUpscaler(fp16_dir / "sr_x2.onnx", provider="cpu", fp16=True)
    assert half.model.precision == "fp16" and half.describe().endswith("fp16")
    diff = np.abs(half(img).astype(int) - auto(img).astype(int))
    assert diff.max() <= 3 and diff.mean() < 0.5
    assert half.model.precision == "fp16"  # finite output: no fall-back


def test_fp16_falls_back_to_fp32_on_non_finite_output(fp16_dir: Path, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """An fp16 twin that overflows (an inf in a bias: every output NaN) is replaced by fp32."""
    import logging

    import onnx
    from onnx import numpy_helper

    from app.upscale import OnnxUpscaler
    from tests.conftest import textured

    for ext in (".onnx", ".json"):
        shutil.copyfile((fp16_dir / "sr_x2").with_suffix(ext), tmp_path / f"sr_x2{ext}")
    proto = onnx.load(str(fp16_dir / "sr_x2_fp16.onnx"))
    bias = next(i for i in proto.graph.initializer if i.name.endswith("bias"))
    arr = numpy_helper.to_array(bias).copy()
    arr[0] = np.inf
    bias.CopyFrom(numpy_helper.from_array(arr, bias.name))
    onnx.save(proto, str(tmp_path / "sr_x2_fp16.onnx"))
    img = textured(23, 31, seed=7)
    ref = OnnxUpscaler(tmp_path / "sr_x2.onnx", provider="cpu", fp16=False)(img)
    eng = OnnxUpscaler(tmp_path / "sr_x2.onnx", provider="cpu", fp16=True)
    assert eng.model.precision == "fp16"
    with caplog.at_level(logging.WARNING, logger="app.engines"):
        out = eng(img)
    assert "non-finite fp16 output" in caplog.text
    assert eng.model.precision == "fp32" and (out == ref).all()


def test_fp16_twin_errors(fp16_dir: Path, models_dir: Path, tmp_path: Path) -> None:
    from app.engines import EngineError
    from app.upscale import OnnxUpscaler

    with pytest.raises(EngineError, match="no fp16 model"):
        OnnxUpscaler(models_dir / "sr_x4.onnx", provider="cpu", fp16=True)
    with pytest.raises(EngineError, match="other weights"):  # seeds 5 and 6
        OnnxUpscaler(models_dir / "sr_x2.onnx", provider="cpu", fp16=True,
                     fp16_path=fp16_dir / "sr_x2_fp16.onnx")
    with pytest.raises(EngineError, match="fp16 model file not found"):
        OnnxUpscaler(models_dir / "sr_x2.onnx", provider="cpu", fp16=True,
                     fp16_path=tmp_path / "none.onnx")


# --- parity: ONNX Runtime against the PyTorch backend, at odd sizes ------------------------

def _assert_close_frames(ours: list[np.ndarray], ref: list[np.ndarray]) -> None:
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref, strict=True):
        assert a.shape == b.shape and a.dtype == np.uint8
        diff = np.abs(a.astype(int) - b.astype(int))
        # OpenCV remaps at 1/32 px and rounds to uint8 before blending: rare pixels differ.
        assert diff.mean() < 0.3 and np.percentile(diff, 99) <= 3, (diff.mean(), diff.max())


def _interp_parity(onnx_path: Path, weights: Path, size: tuple[int, int]) -> None:
    from app.engines import OnnxInterpolator, TorchInterpolator
    from tests.conftest import textured

    f0 = textured(*size, seed=11)
    f1 = np.roll(f0, (2, -3), axis=(0, 1))
    ts = [0.25, 0.5, 0.75]
    ours = OnnxInterpolator(onnx_path, provider="cpu")
    # The classical flow settings the file was exported with (the registry's may have moved on).
    classical = json.loads(ours.meta["classical"])
    torch_eng = TorchInterpolator(weights, provider="cpu", classical=classical)
    assert torch_eng.provider == "torch cpu"
    _assert_close_frames(ours(f0, f1, ts), torch_eng(f0, f1, ts))


def _sr_parity(onnx_path: Path, weights: Path, size: tuple[int, int]) -> None:
    from app.upscale import OnnxUpscaler, TorchUpscaler
    from tests.conftest import textured

    img = textured(*size, seed=12)
    ours = OnnxUpscaler(onnx_path, provider="cpu")
    ref = TorchUpscaler(weights, provider="cpu", scale=ours.scale)
    a, b = ours(img), ref(img)
    assert a.shape == b.shape == (size[0] * ours.scale, size[1] * ours.scale, 3)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


@pytest.mark.parametrize("size", [(37, 53), (45, 67)])
@pytest.mark.parametrize(
    "name", ["interp_occ", "interp_occ4", "interp_hybrid_tiny", "sr_x2", "sr_x4"])
def test_parity_tiny_models(models_dir: Path, name: str, size: tuple[int, int]) -> None:
    onnx_path = models_dir / f"{name}.onnx"
    check = _interp_parity if name.startswith("interp") else _sr_parity
    check(onnx_path, onnx_path.with_suffix(".safetensors"), size)


SHIPPED = sorted((REPO / "assets").glob("*.onnx"))


@pytest.mark.parametrize("onnx_path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_parity_shipped_models(onnx_path: Path) -> None:
    """Every model in assets/: sidecar checks, then ONNX Runtime against PyTorch at odd sizes."""
    import onnx

    from app.discovery import find_model, read_sidecar

    side = read_sidecar(onnx_path)
    kind, scale = side["kind"], side.get("scale")
    assert find_model(kind, scale if kind == "sr" else None, onnx_path) == onnx_path
    meta = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert meta["m23.weights_sha256"] == side["weights_sha256"]
    weights = onnx_path.with_suffix(".safetensors")
    check = _interp_parity if kind == "interp" else _sr_parity
    check(onnx_path, weights, (61, 83))


def test_torch_backends_refuse_bad_checkpoints(models_dir: Path, tmp_path: Path) -> None:
    from app.engines import EngineError, TorchInterpolator
    from app.upscale import TorchUpscaler

    with pytest.raises(EngineError, match="not interpolation"):
        TorchInterpolator(models_dir / "sr_x2.safetensors")
    with pytest.raises(EngineError, match="not super-resolution"):
        TorchUpscaler(models_dir / "interp_occ4.safetensors")
    with pytest.raises(EngineError, match="not 4"):
        TorchUpscaler(models_dir / "sr_x2.safetensors", scale=4)
    with pytest.raises(EngineError):
        TorchUpscaler(tmp_path / "missing.safetensors")


def test_open_engines_by_model_choice(models_dir: Path) -> None:
    from app.discovery import open_interpolator, open_upscaler
    from app.engines import EngineError, OnnxInterpolator, TorchInterpolator
    from app.upscale import OnnxUpscaler, TorchUpscaler

    assert isinstance(open_interpolator(models_dir, provider="cpu"), OnnxInterpolator)
    up = open_upscaler(models_dir / "sr_x4.onnx", 4, provider="cpu", tile=64)
    assert isinstance(up, OnnxUpscaler) and up.scale == 4 and up.tile == 64
    assert isinstance(open_interpolator(models_dir / "interp_occ4.safetensors",
                                        provider="cpu"), TorchInterpolator)
    assert isinstance(open_upscaler(models_dir / "sr_x2.safetensors", 2, provider="cpu"),
                      TorchUpscaler)
    with pytest.raises(EngineError, match="upscales by 2 according to"):
        open_upscaler(models_dir / "sr_x2.onnx", 4, provider="cpu")


def test_render_path_imports_no_torch(models_dir: Path) -> None:
    """Deployment without torch: discovery and both ONNX engines in a fresh process."""
    code = (
        "import sys, numpy as np\n"
        "from app.discovery import find_model, open_interpolator, open_upscaler\n"
        "from app.engines import OnnxInterpolator\n"
        "from app.upscale import OnnxUpscaler\n"
        f"d = {str(models_dir)!r}\n"
        "interp = OnnxInterpolator(find_model('interp', None, d), provider='cpu')\n"
        "f = np.random.default_rng(0).integers(0, 256, (33, 41, 3), dtype=np.uint8)\n"
        "out = interp(f, np.roll(f, 2, 1), [0.25, 0.5, 0.75])\n"
        "assert len(out) == 3 and out[0].shape == (33, 41, 3)\n"
        "up = OnnxUpscaler(find_model('sr', 4, d), provider='cpu', tile=16, overlap=8)\n"
        "assert up(f).shape == (132, 164, 3)\n"
        "assert open_upscaler(d, 2, provider='cpu')(f).shape == (66, 82, 3)\n"
        "assert len(open_interpolator(d, provider='cpu')(f, f, [0.5])) == 1\n"
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith(('torch.', 'training'))]\n"
        "assert not bad, bad[:5]\n"
        "print('ok')\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-1500:]


def test_bench_engines_rows_side_by_side(models_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "engines.json"
    assert main(["bench", "engines", "--models", str(models_dir), "--sizes", "64x96",
                 "--threads", "1", "--runs", "1", "--no-torch", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    methods = {r["method"] for r in rows}
    # Ours and the classical baseline, measured in the same run.
    assert any("onnx" in m.lower() or "ort" in m.lower() for m in methods), methods
    assert any("dis" in m.lower() for m in methods) and any("bicubic" in m.lower()
                                                             for m in methods), methods
    assert all(r["ms"] > 0 for r in rows)
