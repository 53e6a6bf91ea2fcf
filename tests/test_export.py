"""ONNX export, its checks, and the ONNX Runtime engine (parity with PyTorch, no torch)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from app.cli import main
from tests.conftest import REPO, textured


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from models.registry import get_model
    from training.checkpoint import save_checkpoint

    d = tmp_path_factory.mktemp("onnx")
    model = get_model("interp_hybrid_tiny", init_seed=3)
    save_checkpoint(d / "ck", model, "interp_hybrid_tiny", None, {"step": 7})
    out = d / "tiny.onnx"
    assert main(["export", "interp", "--checkpoint", str(d / "ck"), "-o", str(out)]) == 0
    return out


def test_export_writes_model_weights_and_sidecar(tiny_onnx: Path) -> None:
    import onnx

    proto = onnx.load(str(tiny_onnx))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["m23.kind"] == "interp" and meta["m23.arch"] == "interp_hybrid_tiny"
    assert meta["m23.train_steps"] == "7"
    assert len(meta["m23.weights_sha256"]) == 64
    side = json.loads(tiny_onnx.with_suffix(".json").read_text())
    assert side["architecture"] == "interp_hybrid_tiny"
    assert side["weights_sha256"] == meta["m23.weights_sha256"]
    assert tiny_onnx.with_suffix(".safetensors").is_file()
    dims = [d.dim_param for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "", "height", "width"]


def test_onnx_engine_matches_pytorch(tiny_onnx: Path) -> None:
    from app.engines import OnnxInterpolator
    from training.inference import load_interpolator

    f0, f1 = textured(45, 67, seed=1), textured(45, 67, seed=2)
    onnx_out = OnnxInterpolator(tiny_onnx, provider="cpu")(f0, f1, [0.25, 0.5, 0.75])
    _, torch_fn = load_interpolator(tiny_onnx.with_suffix(".safetensors"))
    torch_out = torch_fn(f0, f1, [0.25, 0.5, 0.75])
    assert len(onnx_out) == 3
    for a, b in zip(onnx_out, torch_out, strict=True):
        assert a.shape == (45, 67, 3) and a.dtype == np.uint8
        diff = np.abs(a.astype(int) - b.astype(int))
        assert diff.max() <= 3 and diff.mean() < 0.3


@pytest.mark.parametrize("arch", ["interp_hybrid", "interp_neural", "interp_occ", "interp_occ4"])
def test_engine_matches_pytorch_with_motion(arch: str, tmp_path: Path) -> None:
    """The engine's OpenCV glue (hybrid) or the whole graph (neural) against the torch model."""
    from app.engines import OnnxInterpolator
    from app.export import export_onnx
    from models.registry import get_model
    from training.inference import TorchInterpolator
    from training.tasks import classical_config

    model = get_model(arch, init_seed=1)
    with torch.no_grad():  # make the learned part matter
        for name, p in model.named_parameters():
            if "head" in name:
                p.mul_(30.0)
            elif name.startswith("net.4"):  # interp_occ's output layer
                p.normal_(0.0, 0.5)
    export_onnx(model, arch, tmp_path / "m.onnx")
    f0 = textured(61, 83, seed=4)
    f1 = np.roll(f0, (2, 5), axis=(0, 1))
    ours = OnnxInterpolator(tmp_path / "m.onnx", provider="cpu")(f0, f1, [0.3, 0.5])
    ref = TorchInterpolator(model, classical_config(arch))(f0, f1, [0.3, 0.5])
    for a, b in zip(ours, ref, strict=True):
        diff = np.abs(a.astype(int) - b.astype(int))
        # OpenCV remaps at 1/32 px and rounds to uint8 before blending: rare edge pixels differ.
        assert diff.mean() < 0.3 and np.percentile(diff, 99) <= 3, (diff.mean(), diff.max())


def test_onnx_engine_runs_without_torch(tiny_onnx: Path) -> None:
    code = (
        "import sys, numpy as np\n"
        "from app.engines import OnnxInterpolator\n"
        f"eng = OnnxInterpolator({str(tiny_onnx)!r}, provider='cpu')\n"
        "f = np.zeros((33, 41, 3), np.uint8)\n"
        "out = eng(f, f, [0.5])\n"
        "assert out[0].shape == (33, 41, 3)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-1500:]


def test_export_refuses_bad_requests(tmp_path: Path, tiny_onnx: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    ck = tiny_onnx.with_suffix(".safetensors")
    assert main(["export", "interp", "--checkpoint", str(ck), "-o", str(tiny_onnx)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["export", "interp", "--checkpoint", str(ck), "-o",
                 str(tmp_path / "x.onnx"), "--opset", "13"]) == 2
    assert "opset" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()
    assert main(["export", "sr", "--checkpoint", str(ck), "-o", str(tmp_path / "y.onnx")]) == 2
    assert main(["export", "interp", "--checkpoint", str(tmp_path / "nope"), "-o",
                 str(tmp_path / "z.onnx")]) == 2


def test_engine_errors(tmp_path: Path) -> None:
    from app.engines import EngineError, OnnxInterpolator, create_session

    with pytest.raises(EngineError, match="not found"):
        create_session(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    with pytest.raises(EngineError, match="cannot load"):
        OnnxInterpolator(bad, provider="cpu")
    with pytest.raises(EngineError, match="unknown provider"):
        create_session(bad, provider="metal")
