"""Find a shipped (or user-supplied) ONNX model and check it against its sidecar file.

A model ships as ``NAME.onnx`` with ``NAME.json`` beside it (written by ``m23 export``, see
``training/package.py``): the sidecar records the kind ("interp" or "sr"), the scale, and the
sha256 of the ONNX file. :func:`find_model` picks the model for a task and refuses a missing,
damaged or mismatched one with an :class:`~app.engines.EngineError` whose message is one
readable line (standard library only, cheap to call). :func:`open_interpolator` and
:func:`open_upscaler` turn a model choice (the shipped one, ``--models DIR``, an .onnx file or a
PyTorch checkpoint) into an engine.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from app.engines import DEFAULT_THREADS, EngineError, Interpolator, Upscaler

__all__ = [
    "ASSETS", "DEFAULT_NAMES", "file_sha256", "find_model", "open_interpolator", "open_upscaler",
    "read_sidecar",
]

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent.parent / "assets"
"""The folder of the shipped models."""

DEFAULT_NAMES = {("interp", None): "interp_occ4", ("sr", 2): "sr_x2", ("sr", 4): "sr_x4"}
"""File stems of the shipped models, by (kind, scale)."""


def file_sha256(path: str | Path) -> str:
    """sha256 (hex) of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_sidecar(onnx_path: str | Path) -> dict[str, Any]:
    """Read and parse ``onnx_path`` with a .json suffix.

    Raises:
        EngineError: the sidecar is missing, unreadable or not a JSON object.
    """
    side = Path(onnx_path).with_suffix(".json")
    if not side.is_file():
        raise EngineError(f"model metadata file not found: {side} (every model needs the .json "
                          "sidecar that m23 export writes beside the .onnx)")
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EngineError(f"damaged model metadata file {side}: {exc}") from None
    if not isinstance(data, dict):
        raise EngineError(f"damaged model metadata file {side}: not a JSON object")
    return data


def _check(onnx_path: Path, info: dict[str, Any], kind: str, scale: int | None) -> None:
    """Kind, scale and the sha256 of the ONNX file against the sidecar."""
    side = onnx_path.with_suffix(".json")
    if info.get("kind") != kind:
        raise EngineError(f"{onnx_path} is a {info.get('kind')!r} model according to {side}, "
                          f"not {kind!r}")
    if kind == "sr" and scale is not None and info.get("scale") != scale:
        raise EngineError(f"{onnx_path} upscales by {info.get('scale')!r} according to {side}, "
                          f"not {scale}")
    onnx_entry = info.get("onnx")
    recorded = onnx_entry.get("sha256") if isinstance(onnx_entry, dict) else None
    if not isinstance(recorded, str) or len(recorded) != 64:
        raise EngineError(f"{side} records no sha256 of the ONNX file")
    try:
        actual = file_sha256(onnx_path)
    except OSError as exc:
        raise EngineError(f"cannot read model file {onnx_path}: {exc}") from None
    if actual != recorded.lower():
        raise EngineError(f"{onnx_path} does not match its metadata {side} (sha256 {actual[:12]}"
                          f"... recorded {recorded[:12]}...): the file is damaged or was "
                          "replaced; export it again")


def _candidates(folder: Path, kind: str, scale: int | None) -> list[Path]:
    """ONNX files in ``folder`` whose sidecar names this kind (and scale)."""
    found = []
    for onnx_path in sorted(folder.glob("*.onnx")):
        try:
            info = read_sidecar(onnx_path)
        except EngineError:
            continue
        if info.get("kind") == kind and (kind != "sr" or info.get("scale") == scale):
            found.append(onnx_path)
    return found


def find_model(kind: str, scale: int | None = None,
               models_dir: str | Path | None = None) -> Path:
    """The checked ONNX file for a task.

    Looks in ``models_dir`` (default: the shipped ``assets/``) for the shipped name
    (``interp_occ4.onnx``, ``sr_x2.onnx``, ``sr_x4.onnx``); when that is absent, for the one
    ONNX file whose sidecar declares this kind and scale. ``models_dir`` may also name an .onnx
    file directly. The sidecar's kind and scale and the file's sha256 are checked.

    Args:
        kind: "interp" or "sr".
        scale: 2 or 4 for "sr" (None: 2); ignored for "interp".
        models_dir: a folder of models, an .onnx file, or None for the shipped models.

    Returns:
        The path of the .onnx file.

    Raises:
        EngineError: unknown kind or scale, no model (or several candidates) found, a
            missing or damaged sidecar, a kind/scale mismatch, a sha256 mismatch.
    """
    if kind not in ("interp", "sr"):
        raise EngineError(f"unknown model kind {kind!r}; use 'interp' or 'sr'")
    if kind == "sr":
        scale = 2 if scale is None else scale
        if scale not in (2, 4):
            raise EngineError(f"unsupported upscaling factor {scale}; use 2 or 4")
    else:
        scale = None
    what = "interpolation model" if kind == "interp" else f"x{scale} super-resolution model"
    where = Path(models_dir) if models_dir is not None else ASSETS
    if where.suffix == ".onnx":
        if not where.is_file():
            raise EngineError(f"model file not found: {where}")
        path = where
    elif not where.is_dir():
        raise EngineError(f"models folder not found: {where}")
    else:
        path = where / f"{DEFAULT_NAMES[(kind, scale)]}.onnx"
        if not path.is_file():
            found = _candidates(where, kind, scale)
            if not found:
                hint = (" (the shipped models are not there yet: export one with m23 export "
                        "and pass --models)" if where.resolve() == ASSETS else "")
                raise EngineError(f"no {what} in {where}: expected {path.name} with its .json "
                                  f"sidecar{hint}")
            if len(found) > 1:
                raise EngineError(f"several {what}s in {where} ({', '.join(p.name for p in found)})"
                                  f"; pass the .onnx file itself")
            path = found[0]
    _check(path, read_sidecar(path), kind, scale)
    log.debug("using %s %s", what, path)
    return path


def _is_onnx(model: str | Path | None) -> bool:
    """False for a PyTorch checkpoint: a .safetensors file or a folder with
    ``model.safetensors``."""
    if model is None:
        return True
    p = Path(model)
    return not (p.suffix == ".safetensors" or (p.is_dir() and (p / "model.safetensors").is_file()))


def open_interpolator(model: str | Path | None = None, *, provider: str = "auto",
                      threads: int = DEFAULT_THREADS, **kwargs: Any) -> Interpolator:
    """An interpolation engine for the shipped model, a models folder, an .onnx file, or a
    PyTorch checkpoint (a folder with ``model.safetensors`` or the file itself).

    ONNX models are found and checked with :func:`find_model` and run by
    :class:`~app.engines.OnnxInterpolator` (extra keyword arguments go to it); checkpoints run
    by :class:`~app.engines.TorchInterpolator` (which imports torch).

    Raises:
        EngineError: no model, a damaged one, a mismatch, no provider.
    """
    from app.engines import OnnxInterpolator, TorchInterpolator

    if _is_onnx(model):
        return OnnxInterpolator(find_model("interp", None, model), provider, threads, **kwargs)
    return TorchInterpolator(Path(str(model)), "cpu" if provider == "cpu" else "auto", threads)


def open_upscaler(model: str | Path | None = None, scale: int = 2, *, provider: str = "auto",
                  threads: int = DEFAULT_THREADS, **kwargs: Any) -> Upscaler:
    """An upscaling engine, found like :func:`open_interpolator`: the shipped ``sr_x{scale}``,
    a models folder, an .onnx file or a PyTorch checkpoint. Extra keyword arguments (tile,
    overlap, max_pixels, fp16, ...) go to :class:`~app.upscale.OnnxUpscaler` or
    :class:`~app.upscale.TorchUpscaler`.

    Raises:
        EngineError: no model, a damaged one, a mismatch (kind, scale), no provider.
    """
    from app.upscale import OnnxUpscaler, TorchUpscaler

    if _is_onnx(model):
        return OnnxUpscaler(find_model("sr", scale, model), provider, threads, scale=scale,
                            **kwargs)
    return TorchUpscaler(Path(str(model)), "cpu" if provider == "cpu" else "auto", threads,
                         scale=scale, **kwargs)
