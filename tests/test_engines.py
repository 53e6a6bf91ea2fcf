"""Engines: model discovery, the shared interface, providers, parity with PyTorch, no torch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.cli import main


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with tiny models under the shipped names: interp_hybrid, sr_x2, sr_x4."""
    from models.registry import get_model
    from training.checkpoint import save_checkpoint

    d = tmp_path_factory.mktemp("models")
    for arch, name, task in (("interp_hybrid_tiny", "interp_hybrid", "interp"),
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

    assert find_model("interp", models_dir=models_dir) == models_dir / "interp_hybrid.onnx"
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
    _copy(models_dir / "sr_x2", bad, "interp_hybrid")
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
