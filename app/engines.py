"""Inference engines on uint8 RGB frames, running ONNX models with ONNX Runtime.

No torch here: deployment needs only numpy, OpenCV and onnxruntime.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["EngineError", "create_session", "OnnxInterpolator", "read_onnx_metadata"]

log = logging.getLogger(__name__)

_PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


class EngineError(RuntimeError):
    """A model that cannot be loaded or run, with a message for the user."""


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise EngineError(
            "ONNX Runtime is not installed: pip install 'm23-spectrum[cpu]' (or '[gpu]' for "
            "CUDA/TensorRT)") from exc
    return onnxruntime


def create_session(path: str | Path, provider: str = "auto", threads: int = 1) -> Any:
    """An ONNX Runtime session for ``path``.

    Args:
        path: the .onnx file.
        provider: "auto" (TensorRT, then CUDA, then CPU: whatever the installed build offers),
            "cpu", "cuda" or "tensorrt".
        threads: intra-op threads (0: ONNX Runtime's default).

    Raises:
        EngineError: missing or damaged file, provider not available.
    """
    ort = _ort()
    p = Path(path)
    if not p.is_file():
        raise EngineError(f"model file not found: {p}")
    available = ort.get_available_providers()
    if provider == "auto":
        wanted = [x for x in _PROVIDERS["tensorrt"] if x in available]
    elif provider in _PROVIDERS:
        wanted = _PROVIDERS[provider]
        if wanted[0] not in available:
            raise EngineError(f"provider {provider!r} is not available in this ONNX Runtime "
                              f"build (available: {', '.join(available)})")
    else:
        raise EngineError(f"unknown provider {provider!r}; use auto, cpu, cuda or tensorrt")
    opts = ort.SessionOptions()
    if threads > 0:
        opts.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(p), opts, providers=wanted)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise EngineError(f"cannot load model {p}: {exc}") from exc


def read_onnx_metadata(session: Any) -> dict[str, str]:
    """The ``m23.*`` metadata of a session's model (without the prefix)."""
    props = session.get_modelmeta().custom_metadata_map
    return {k[4:]: v for k, v in props.items() if k.startswith("m23.")}


def _to_nchw(frames: Sequence[np.ndarray]) -> np.ndarray:
    arr = np.stack(frames).astype(np.float32) * (1.0 / 255.0)
    return np.ascontiguousarray(arr.transpose(0, 3, 1, 2))


def _to_u8(batch: np.ndarray) -> list[np.ndarray]:
    out = np.clip(np.rint(batch * 255.0), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    return [np.ascontiguousarray(f) for f in out]


class OnnxInterpolator:
    """Callable ``(frame0, frame1, times) -> frames`` on (H, W, 3) uint8 RGB frames.

    Hybrid models get their classical flow (DIS, settings from the model's metadata) computed
    once per pair; all times run as one batch.
    """

    def __init__(self, path: str | Path, provider: str = "auto", threads: int = 1) -> None:
        from models.classical import DISConfig

        self.session = create_session(path, provider, threads)
        self.meta = read_onnx_metadata(self.session)
        if self.meta.get("kind") != "interp":
            raise EngineError(f"{path} is not an interpolation model "
                              f"(kind {self.meta.get('kind')!r})")
        classical = json.loads(self.meta.get("classical", "null"))
        self.dis = DISConfig(**classical) if classical else None
        self.provider = self.session.get_providers()[0]
        self._grid_cache: tuple[np.ndarray, np.ndarray] | None = None
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, f0: np.ndarray, f1: np.ndarray, ts: Sequence[float]) -> list[np.ndarray]:
        """Synthesize the frames at times ``ts`` (each in (0, 1)) between two frames.

        Args:
            f0, f1: (H, W, 3) uint8 RGB frames of one size.
            ts: times.

        Returns:
            One (H, W, 3) uint8 RGB frame per time.
        """
        if f0.shape != f1.shape or f0.ndim != 3 or f0.shape[2] != 3 or f0.dtype != np.uint8:
            raise ValueError(f"expected two HxWx3 uint8 frames of one size, got {f0.shape} "
                             f"{f0.dtype}, {f1.shape} {f1.dtype}")
        if not ts or not all(0.0 < float(t) < 1.0 for t in ts):
            raise ValueError(f"times must be in (0, 1), got {list(ts)}")
        if self.meta.get("pipeline") == "hybrid_core":
            return self._hybrid(f0, f1, [float(t) for t in ts])
        n = len(ts)
        x = _to_nchw([f0, f1])
        feed = {"img0": np.repeat(x[:1], n, 0), "img1": np.repeat(x[1:], n, 0),
                "t": np.asarray(ts, dtype=np.float32).reshape(n, 1, 1, 1)}
        return _to_u8(self.session.run(None, feed)[0])

    def _grid(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (x, y) of an (h, w) frame, kept for the last size seen."""
        if self._grid_cache is None or self._grid_cache[0].shape != (h, w):
            gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            self._grid_cache = (gx, gy)
        return self._grid_cache

    def _hybrid(self, f0: np.ndarray, f1: np.ndarray, ts: list[float]) -> list[np.ndarray]:
        """Classical flow, the learned core at 1/scale, bicubic warps and the blend (OpenCV)."""
        import cv2

        from models.classical import dis_flows

        h, w = f0.shape[:2]
        scale = int(self.meta.get("core_scale", "4"))
        hs, ws = max(1, h // scale), max(1, w // scale)
        f01, f10 = dis_flows(f0, f1, self.dis)
        inv = 1.0 / 255.0
        a_l = cv2.resize(f0, (ws, hs), interpolation=cv2.INTER_LINEAR_EXACT).astype(np.float32)
        b_l = cv2.resize(f1, (ws, hs), interpolation=cv2.INTER_LINEAR_EXACT).astype(np.float32)
        f01_l = cv2.resize(f01, (ws, hs), interpolation=cv2.INTER_LINEAR) * (1.0 / scale)
        f10_l = cv2.resize(f10, (ws, hs), interpolation=cv2.INTER_LINEAR) * (1.0 / scale)
        n = len(ts)
        flows_l = np.empty((n, 4, hs, ws), np.float32)
        for k, t in enumerate(ts):
            flows_l[k, :2] = (-(1 - t) * t * f01_l + t * t * f10_l).transpose(2, 0, 1)
            flows_l[k, 2:] = ((1 - t) ** 2 * f01_l - t * (1 - t) * f10_l).transpose(2, 0, 1)
        feed = {"img0": np.repeat(a_l.transpose(2, 0, 1)[None] * inv, n, 0),
                "img1": np.repeat(b_l.transpose(2, 0, 1)[None] * inv, n, 0),
                "flow": flows_l, "t": np.asarray(ts, np.float32).reshape(n, 1, 1, 1)}
        core = self.session.run(None, feed)[0]
        gx, gy = self._grid(h, w)
        # Maps for the warps: p + flow_t(p), from the classical flows and the learned residual.
        g2 = np.dstack((gx, gy))
        out = []
        for k, t in enumerate(ts):
            up = cv2.resize(np.ascontiguousarray(core[k].transpose(1, 2, 0)), (w, h),
                            interpolation=cv2.INTER_LINEAR)
            map0 = g2 + (-(1 - t) * t) * f01 + (t * t) * f10 + up[..., 0:2] * scale
            map1 = g2 + ((1 - t) ** 2) * f01 + (-t * (1 - t)) * f10 + up[..., 2:4] * scale
            w0 = cv2.remap(f0, map0, None, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
            w1 = cv2.remap(f1, map1, None, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
            logit = up[..., 4] + np.float32(np.log((1 - t) / t))
            m0 = 1.0 / (1.0 + np.exp(-logit))
            out.append(cv2.blendLinear(w0, w1, m0, 1.0 - m0))
        return out
