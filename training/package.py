"""Package a trained checkpoint for shipping: ONNX + safetensors + a metadata sidecar."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from models.registry import get_model, get_spec
from training.checkpoint import (
    CheckpointError,
    atomic_write_bytes,
    load_weights,
    read_arch,
    weights_path,
)

__all__ = ["package_model", "file_sha256"]


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def package_model(
    checkpoint: str | Path,
    out: Path,
    *,
    kind: str,
    arch: str | None = None,
    opset: int = 17,
    fp16: bool = False,
    reports: list[Path] | None = None,
    scale: int | None = None,
) -> Path:
    """Export ``checkpoint`` to ``out`` (.onnx), copy its weights beside it as .safetensors and
    write ``out`` with a .json suffix: architecture, training state, measured metrics, sha256.

    Returns:
        The path of the sidecar JSON.
    """
    from app.export import export_onnx

    wpath = weights_path(checkpoint)
    arch = read_arch(wpath, arch)
    try:
        spec = get_spec(arch)
    except KeyError as exc:
        raise CheckpointError(str(exc.args[0])) from None
    if spec.kind != kind:
        raise CheckpointError(f"{wpath} holds a {spec.kind} model ({arch}), not {kind}")
    if scale is not None and spec.scale != scale:
        raise CheckpointError(f"{wpath} holds an x{spec.scale} model ({arch}), not x{scale}")
    model = get_model(arch)
    load_weights(wpath, model, arch)
    state: dict[str, Any] = {}
    state_file = wpath.parent / "state.json"
    if state_file.is_file():
        state = json.loads(state_file.read_text())
    meta = export_onnx(model, arch, out, opset=opset, fp16=fp16,
                       extra_meta={"train_steps": str(state.get("step", "unknown"))})
    st_out = out.with_suffix(".safetensors")
    if st_out.resolve() != wpath.resolve():
        shutil.copyfile(wpath, st_out)
    metrics = {}
    for r in reports or []:
        rep = json.loads(Path(r).read_text())
        key = f"{rep.get('set', r.stem)}_x{rep.get('factor', rep.get('scale', 2))}"
        metrics[key] = {"n": rep.get("n"), "results": rep.get("results")}
    cfg = state.get("config", {})
    sidecar = {
        "name": out.stem,
        "kind": kind,
        "architecture": arch,
        "description": spec.description,
        "scale": spec.scale,
        "size_requirements": {"minimum": spec.size.minimum,
                              "multiple_of": spec.size.multiple_of},
        "fp16": fp16,
        "supports_fp16": spec.fp16,
        "classical_flow": spec.extra.get("classical"),
        "parameters": sum(p.numel() for p in model.parameters()),
        "training": {"steps": state.get("step"), "data": cfg.get("data"),
                     "batch": cfg.get("batch"), "crop": cfg.get("crop"), "lr": cfg.get("lr"),
                     "best_val_psnr": state.get("best_val_psnr"),
                     "elapsed_s": state.get("elapsed_s")},
        "metrics": metrics,
        "onnx": {"file": out.name, "sha256": file_sha256(out), "opset": opset},
        "safetensors": {"file": st_out.name, "sha256": file_sha256(st_out)},
        "weights_sha256": meta["m23.weights_sha256"],
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    side = out.with_suffix(".json")
    atomic_write_bytes(side, (json.dumps(sidecar, indent=2) + "\n").encode())
    return side
