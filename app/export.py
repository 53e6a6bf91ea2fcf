"""Export models to ONNX (dynamic batch, height and width), checked against ONNX Runtime."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

__all__ = ["ExportError", "export_onnx", "weights_sha256", "FORMAT_VERSION"]

log = logging.getLogger(__name__)

FORMAT_VERSION = "1"


class ExportError(RuntimeError):
    """The export failed a check; the output file was removed."""


def weights_sha256(model: Any) -> str:
    """sha256 over the model's state dict (names, shapes and float32 bytes), in name order."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(str(tuple(v.shape)).encode())
        h.update(v.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _pipeline(spec: Any) -> str:
    """How the engine runs a registered model: "full" (one graph), "hybrid_core" (classical
    flow and warps in OpenCV around a low-resolution core) or "hybrid_occ" (classical flow and
    warps, occlusion cues in OpenCV, the per-block fusion network as the graph)."""
    if not spec.extra.get("classical"):
        return "full"
    return str(spec.extra.get("pipeline", "hybrid_core"))


def _wrapper(model: Any, kind: str, pipeline: str, fp16: bool) -> Any:
    """The module that is exported: the whole model, or only the low-resolution core of a
    hybrid frame generator (the engine does the full-resolution part with OpenCV)."""
    import torch

    from models.frame_generator import HybridCore

    dt = torch.float16 if fp16 else torch.float32

    class Core(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = HybridCore(model)

        def forward(self, img0: Any, img1: Any, flow: Any, t: Any) -> Any:
            return self.m(img0.to(dt), img1.to(dt), flow.to(dt), t.to(dt)).to(torch.float32)

    class Interp(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = model

        def forward(self, img0: Any, img1: Any, t: Any) -> Any:
            return self.m(img0.to(dt), img1.to(dt), t.to(dt)).to(torch.float32)

    class SR(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = model

        def forward(self, image: Any) -> Any:
            return self.m(image.to(dt)).to(torch.float32)

    class Occ(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = model

        def forward(self, features: Any) -> Any:
            return self.m.logit(features.to(dt)).to(torch.float32)

    if kind == "sr":
        return SR()
    if pipeline == "hybrid_occ":
        return Occ()
    return Core() if pipeline == "hybrid_core" else Interp()


def _inputs(kind: str, pipeline: str, b: int, h: int, w: int, seed: int,
            features: int = 0) -> dict[str, Any]:
    """Random example inputs; ``features``: the cue count of a hybrid_occ model."""
    import torch

    g = torch.Generator().manual_seed(seed)
    if kind == "sr":
        return {"image": torch.rand(b, 3, h, w, generator=g)}
    if pipeline == "hybrid_occ":
        return {"features": torch.rand(b, features, h, w, generator=g) * 2}
    d = {"img0": torch.rand(b, 3, h, w, generator=g), "img1": torch.rand(b, 3, h, w, generator=g)}
    if pipeline == "hybrid_core":
        d["flow"] = torch.randn(b, 4, h, w, generator=g) * 2
    d["t"] = torch.rand(b, 1, 1, 1, generator=g) * 0.8 + 0.1
    return d


def export_onnx(
    model: Any,
    arch: str,
    out: str | Path,
    *,
    opset: int = 17,
    fp16: bool = False,
    extra_meta: dict[str, Any] | None = None,
    check_sizes: tuple[tuple[int, int], ...] = ((37, 53), (66, 90)),
) -> dict[str, str]:
    """Export ``model`` (a registered architecture ``arch``) to ``out`` and verify it.

    Writes under a temporary name; runs onnx.checker and compares ONNX Runtime (CPU) with
    PyTorch on random inputs of two odd sizes (max abs difference below 1e-4 in fp32, 1e-2 in
    fp16); on failure removes the file and raises ExportError. Returns the metadata stored in
    the file.
    """
    import onnx
    import torch

    from models.registry import get_spec

    if opset < 16:
        raise ExportError(f"opset {opset} is too old: GridSample needs 16 or later")
    spec = get_spec(arch)
    kind = spec.kind
    pipeline = _pipeline(spec)
    model = model.eval().float()
    meta: dict[str, str] = {
        "m23.kind": kind,
        "m23.arch": arch,
        "m23.scale": str(spec.scale),
        "m23.size_minimum": str(spec.size.minimum),
        "m23.size_multiple_of": str(spec.size.multiple_of),
        "m23.input_range": "[0, 1] float32 RGB, NCHW",
        "m23.fp16": str(fp16).lower(),
        "m23.format_version": FORMAT_VERSION,
        "m23.weights_sha256": weights_sha256(model),
        "m23.classical": json.dumps(spec.extra.get("classical")),
        "m23.pipeline": pipeline,
    }
    if pipeline == "hybrid_core":
        from models.frame_generator import HybridCore

        meta["m23.core_scale"] = str(HybridCore(model).scale)
    elif pipeline == "hybrid_occ":
        meta["m23.core_scale"] = str(model.block)
        meta["m23.candidates"] = str(model.candidates)
    n_feat = int(model.net[0].in_channels) if pipeline == "hybrid_occ" else 0
    for k, v in (extra_meta or {}).items():
        meta[f"m23.{k}"] = v if isinstance(v, str) else json.dumps(v)
    ref_model = model
    if fp16:
        import copy

        model = copy.deepcopy(model).half()
    wrapper = _wrapper(model, kind, pipeline, fp16).eval()
    example = _inputs(kind, pipeline, 1, 24, 32, 0, n_feat)
    names = list(example)
    out_name = {"hybrid_core": "core", "hybrid_occ": "logit"}.get(
        pipeline, "upscaled" if kind == "sr" else "frame")
    dyn = {n: {0: "batch", 2: "height", 3: "width"} for n in names if n != "t"}
    if "t" in names:
        dyn["t"] = {0: "batch"}
    dyn[out_name] = {0: "batch", 2: "out_height", 3: "out_width"}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapper, tuple(example.values()), str(tmp), input_names=names,
                              output_names=[out_name], dynamic_axes=dyn, opset_version=opset,
                              dynamo=False)
        proto = onnx.load(str(tmp))
        for k, v in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = k, v
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
        _check_parity(ref_model, wrapper, tmp, kind, pipeline, fp16, check_sizes, n_feat)
        os.replace(tmp, out)
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"ONNX export of {arch} failed: {exc}") from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    log.info("exported %s to %s", arch, out)
    return meta


def _check_parity(ref_model: Any, wrapper: Any, path: Path, kind: str, pipeline: str, fp16: bool,
                  sizes: tuple[tuple[int, int], ...], features: int = 0) -> None:
    import numpy as np
    import torch

    from app.engines import create_session

    sess = create_session(path, provider="cpu")
    tol = 1e-2 if fp16 else 1e-4
    for i, (h, w) in enumerate(sizes):
        inputs = _inputs(kind, pipeline, 2, h, w, 100 + i, features)
        with torch.no_grad():
            ref = _wrapper(ref_model, kind, pipeline, False)(*inputs.values()).numpy()
        got = sess.run(None, {k: v.numpy() for k, v in inputs.items()})[0]
        diff = float(np.abs(got - ref).max()) if got.shape == ref.shape else float("inf")
        if not diff < tol:
            raise ExportError(
                f"ONNX Runtime differs from PyTorch at {h}x{w}: max abs diff {diff:.3g} "
                f"(limit {tol:g}); the file was removed")
