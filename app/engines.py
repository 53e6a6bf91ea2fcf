"""Inference engines on uint8 RGB frames, running ONNX models with ONNX Runtime.

One small interface for both tasks (:class:`Interpolator`, :class:`Upscaler`): frames are
(H, W, 3) uint8 RGB NumPy arrays in and out; each engine converts to float NCHW in [0, 1] in
one place, pads to the model's size requirement (:func:`pad_to_requirement`) and crops back.

ONNX Runtime (:class:`OrtModel`) picks its provider by what the installed build offers and what
actually starts (TensorRT, then CUDA, then CPU for ``provider="auto"``), keeps TensorRT engines
in an on-disk cache, prefers an fp16 twin of the model on a GPU and falls back to fp32 when an
fp16 output is not finite, and falls back to the CPU when a GPU provider fails at run time.

No torch here: deployment needs only numpy, OpenCV and onnxruntime. The PyTorch backend for
checkpoints (:class:`TorchInterpolator`) imports torch and the training code lazily.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

__all__ = [
    "CPU", "CUDA", "TENSORRT", "DEFAULT_THREADS", "EngineError", "Interpolator", "Upscaler",
    "OrtBacked", "OrtModel", "OnnxInterpolator", "TorchInterpolator", "create_session", "fp16_twin",
    "pad_to_requirement", "provider_chain", "read_onnx_metadata", "trt_cache_dir",
]

log = logging.getLogger(__name__)

CPU, CUDA, TENSORRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"
_GPU = (TENSORRT, CUDA)
_NAMES = {"cpu": CPU, "cuda": CUDA, "tensorrt": TENSORRT}

DEFAULT_THREADS = 1
"""ONNX Runtime intra-op threads. Measured on the 2-core VM (``m23 bench engines``, README):
one thread was as fast as two for interpolation and faster for upscaling, and leaves the other
core to decoding, encoding and the OpenCV glue of the pipeline."""


class EngineError(RuntimeError):
    """A model that cannot be loaded or run, with a message for the user."""


class Interpolator(Protocol):
    """``(frame0, frame1, times) -> frames``: (H, W, 3) uint8 RGB in, one frame per time out."""

    @property
    def provider(self) -> str:
        """What runs the model, e.g. "CPUExecutionProvider" or "torch cpu"."""

    def __call__(self, f0: np.ndarray, f1: np.ndarray, ts: Sequence[float]) -> list[np.ndarray]:
        """One frame per time in ``ts`` (each in (0, 1)) between ``f0`` and ``f1``."""


class Upscaler(Protocol):
    """``frame -> frame``: (H, W, 3) uint8 RGB in, (scale*H, scale*W, 3) uint8 RGB out."""

    @property
    def provider(self) -> str:
        """What runs the model, e.g. "CPUExecutionProvider" or "torch cpu"."""

    @property
    def scale(self) -> int:
        """The upscaling factor."""

    def __call__(self, img: np.ndarray) -> np.ndarray:
        """The upscaled frame."""


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise EngineError(
            "ONNX Runtime is not installed: pip install 'm23-spectrum[cpu]' (or '[gpu]' for "
            "CUDA/TensorRT)") from exc
    return onnxruntime


def trt_cache_dir() -> Path:
    """Where TensorRT engines are cached: ``$M23_TRT_CACHE``, else ``~/.cache/m23/tensorrt``
    (``$XDG_CACHE_HOME`` respected)."""
    if os.environ.get("M23_TRT_CACHE"):
        return Path(os.environ["M23_TRT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "m23" / "tensorrt"


def provider_chain(provider: str, available: Sequence[str]) -> list[str]:
    """The ONNX Runtime providers to try, best first, for a ``--provider`` choice.

    "auto": TensorRT, then CUDA (those the build offers), then the CPU. "cuda"/"tensorrt": that
    provider only (an error when the build lacks it). "cpu": the CPU.

    Raises:
        EngineError: unknown choice, or a GPU provider this build does not offer.
    """
    if provider == "auto":
        return [p for p in _GPU if p in available] + [CPU]
    if provider not in _NAMES:
        raise EngineError(f"unknown provider {provider!r}; use auto, cpu, cuda or tensorrt")
    name = _NAMES[provider]
    if name != CPU and name not in available:
        raise EngineError(f"provider {provider!r} is not available in this ONNX Runtime build "
                          f"(available: {', '.join(available)}); install onnxruntime-gpu "
                          "(the [gpu] extra) or use --provider cpu")
    return [name]


def _provider_list(name: str, available: Sequence[str], cache: Path | None, trt_fp16: bool,
                   device_id: int) -> list[Any]:
    """The ``providers`` argument of an InferenceSession led by ``name``, with the others
    as fallbacks for nodes the first cannot run."""
    if name == CPU:
        return [CPU]
    cuda = (CUDA, {"device_id": device_id})
    if name == CUDA:
        return [cuda, CPU]
    cache = cache if cache is not None else trt_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    trt = (TENSORRT, {
        "device_id": device_id,
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(cache),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(cache),
        "trt_fp16_enable": trt_fp16,
    })
    return [trt, cuda, CPU] if CUDA in available else [trt, CPU]


def _session_options(threads: int) -> Any:
    opts = _ort().SessionOptions()
    if threads < 0:
        raise EngineError(f"threads must be >= 0 (0: ONNX Runtime's default), got {threads}")
    if threads > 0:
        opts.intra_op_num_threads = threads
    return opts


def _start(path: Path, chain: Sequence[str], threads: int, cache: Path | None, trt_fp16: bool,
           device_id: int) -> tuple[Any, str]:
    """The first provider of ``chain`` whose session starts (and really runs on it)."""
    ort = _ort()
    available = ort.get_available_providers()
    errors = []
    for name in chain:
        try:
            sess = ort.InferenceSession(
                str(path), _session_options(threads),
                providers=_provider_list(name, available, cache, trt_fp16, device_id))
        except EngineError:
            raise
        except Exception as exc:  # onnxruntime raises its own exception types
            if name == CPU:
                raise EngineError(f"cannot load model {path}: {exc}") from None
            errors.append(f"{name}: {str(exc).splitlines()[0] if str(exc) else exc!r}")
            log.warning("%s did not start for %s (%s); trying the next provider", name,
                        path.name, errors[-1])
            continue
        running = sess.get_providers()[0]
        if running == name:
            return sess, name
        # ONNX Runtime falls back to the CPU by itself when a GPU provider fails to load.
        errors.append(f"{name}: did not start (ONNX Runtime fell back to {running})")
        log.warning("%s", errors[-1])
    raise EngineError(f"no requested provider started for {path}: {'; '.join(errors)}")


def create_session(path: str | Path, provider: str = "auto", threads: int = DEFAULT_THREADS,
                   *, cache_dir: str | Path | None = None, trt_fp16: bool = False,
                   device_id: int = 0) -> Any:
    """An ONNX Runtime session for ``path`` on the first provider that starts.

    Args:
        path: the .onnx file.
        provider: "auto" (TensorRT, then CUDA, then CPU: whatever the installed build offers
            and actually starts), "cpu", "cuda" or "tensorrt" (that one or an error).
        threads: intra-op threads (0: ONNX Runtime's default).
        cache_dir: TensorRT engine and timing cache (default :func:`trt_cache_dir`).
        trt_fp16: let TensorRT build fp16 engines.
        device_id: the GPU.

    Raises:
        EngineError: missing or damaged file, provider not available or not starting.
    """
    ort = _ort()
    p = Path(path)
    chain = provider_chain(provider, ort.get_available_providers())
    if not p.is_file():
        raise EngineError(f"model file not found: {p}")
    sess, name = _start(p, chain, threads, None if cache_dir is None else Path(cache_dir),
                        trt_fp16, device_id)
    log.info("%s runs on %s", p.name, name)
    return sess


def read_onnx_metadata(session: Any) -> dict[str, str]:
    """The ``m23.*`` metadata of a session's model (without the prefix)."""
    props = session.get_modelmeta().custom_metadata_map
    return {k[4:]: v for k, v in props.items() if k.startswith("m23.")}


def fp16_twin(path: str | Path) -> Path | None:
    """The fp16 export of a model, ``NAME_fp16.onnx`` beside ``NAME.onnx``, if it exists."""
    p = Path(path)
    twin = p.with_name(f"{p.stem}_fp16.onnx")
    return twin if twin.is_file() else None


class OrtModel:
    """One ONNX model on ONNX Runtime, with its fallbacks.

    - Provider: the first of :func:`provider_chain` that starts; if a GPU provider then fails
      while running, the model is reloaded on the CPU (logged) and the call repeated.
    - Precision: on a GPU provider (or with ``fp16=True``) the fp16 twin (:func:`fp16_twin`,
      or ``fp16_path``) runs when it holds the same weights (metadata ``weights_sha256``); on
      TensorRT without a twin, TensorRT builds fp16 engines itself. Every fp16 output is
      checked: when it is not finite, the fp32 model takes over for good (logged).

    Args:
        path: the fp32 .onnx file.
        provider: "auto", "cpu", "cuda" or "tensorrt" (see :func:`create_session`).
        threads: intra-op threads (0: ONNX Runtime's default).
        fp16: None: fp16 on a GPU provider when possible; True: fp16 on any provider (an fp16
            twin must exist, except on TensorRT); False: fp32 only.
        fp16_path: the fp16 model (default: the twin beside ``path``).
        cache_dir: TensorRT cache folder.
        device_id: the GPU.

    Attributes:
        meta: the model's ``m23.*`` metadata (of the fp32 file).
        provider: the ONNX Runtime provider that runs now, e.g. "CPUExecutionProvider".
        precision: "fp16" or "fp32", what runs now.
    """

    def __init__(self, path: str | Path, provider: str = "auto", threads: int = DEFAULT_THREADS,
                 *, fp16: bool | None = None, fp16_path: str | Path | None = None,
                 cache_dir: str | Path | None = None, device_id: int = 0) -> None:
        self.path = Path(path)
        self._threads, self._cache, self._device = threads, cache_dir, device_id
        self.session = create_session(self.path, provider, threads, cache_dir=cache_dir,
                                      device_id=device_id)
        self.meta = read_onnx_metadata(self.session)
        self.provider: str = self.session.get_providers()[0]
        self.precision = "fp32"
        self._fp32: Any = None  # kept while fp16 runs, for the fall-back
        if fp16 is False or (fp16 is None and self.provider == CPU):
            return
        twin = Path(fp16_path) if fp16_path is not None else fp16_twin(self.path)
        if twin is not None and not twin.is_file():
            raise EngineError(f"fp16 model file not found: {twin}")
        if twin is None and self.provider == TENSORRT:
            fp16_sess = create_session(self.path, "tensorrt", threads, cache_dir=cache_dir,
                                       trt_fp16=True, device_id=device_id)
        elif twin is None:
            if fp16:
                raise EngineError(f"fp16 requested but there is no fp16 model beside "
                                  f"{self.path} (export one with m23 export --fp16 -o "
                                  f"{self.path.stem}_fp16.onnx)")
            return
        else:
            fp16_sess = create_session(twin, self._provider_choice(), threads,
                                       cache_dir=cache_dir, device_id=device_id)
            meta16 = read_onnx_metadata(fp16_sess)
            if meta16.get("weights_sha256") != self.meta.get("weights_sha256"):
                msg = f"{twin} holds other weights than {self.path}"
                if fp16:
                    raise EngineError(msg)
                log.warning("%s; running fp32", msg)
                return
        self._fp32, self.session, self.precision = self.session, fp16_sess, "fp16"
        log.info("%s runs in fp16 on %s (fp32 if an output is not finite)", self.path.name,
                 self.provider)

    def _provider_choice(self) -> str:
        return {CPU: "cpu", CUDA: "cuda", TENSORRT: "tensorrt"}[self.provider]

    def describe(self) -> str:
        """What runs, e.g. ``"CUDAExecutionProvider fp16"``."""
        return f"{self.provider} {self.precision}"

    def input_names(self) -> list[str]:
        """The model's input names, in order."""
        return [i.name for i in self.session.get_inputs()]

    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """The model's first output for ``feed`` (float32 arrays).

        Raises:
            EngineError: the model fails on the CPU (after any fall-back).
        """
        try:
            out = self.session.run(None, feed)[0]
        except Exception as exc:  # onnxruntime raises its own exception types
            if self.provider == CPU:
                raise EngineError(f"running {self.path.name} failed: {exc}") from None
            log.warning("%s failed on %s (%s); falling back to the CPU", self.path.name,
                        self.provider, str(exc).splitlines()[0] if str(exc) else repr(exc))
            self.session = create_session(self.path, "cpu", self._threads)
            self.provider, self.precision, self._fp32 = CPU, "fp32", None
            return self.run(feed)
        if self._fp32 is not None and not np.isfinite(np.add.reduce(out, axis=None)):
            log.warning("%s gave a non-finite fp16 output; switching to fp32", self.path.name)
            self.session, self._fp32, self.precision = self._fp32, None, "fp32"
            return self.run(feed)
        return np.asarray(out, dtype=np.float32)


def pad_to_requirement(img: np.ndarray, minimum: int = 1,
                       multiple_of: int = 1) -> tuple[np.ndarray, tuple[int, int]]:
    """Pad an (H, W, C) image at the bottom and right (edge pixels repeated) so that both sides
    are multiples of ``multiple_of`` and at least ``minimum``.

    Returns:
        The padded image (the input itself when no padding is needed) and the original
        (H, W), to crop the result back with ``out[:H * s, :W * s]``.
    """
    if minimum < 1 or multiple_of < 1:
        raise ValueError(f"minimum and multiple_of must be >= 1, got {minimum}, {multiple_of}")
    h, w = img.shape[:2]
    ph = max(minimum, -(-h // multiple_of) * multiple_of) - h
    pw = max(minimum, -(-w // multiple_of) * multiple_of) - w
    if ph or pw:
        img = np.pad(img, ((0, ph), (0, pw)) + ((0, 0),) * (img.ndim - 2), mode="edge")
    return img, (h, w)


def _to_nchw(frames: Sequence[np.ndarray]) -> np.ndarray:
    arr = np.stack(frames).astype(np.float32) * (1.0 / 255.0)
    return np.ascontiguousarray(arr.transpose(0, 3, 1, 2))


def _to_u8(batch: np.ndarray) -> list[np.ndarray]:
    out = np.clip(np.rint(batch * 255.0), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    return [np.ascontiguousarray(f) for f in out]


def _check_pair(f0: np.ndarray, f1: np.ndarray, ts: Sequence[float]) -> list[float]:
    if (not isinstance(f0, np.ndarray) or not isinstance(f1, np.ndarray) or f0.shape != f1.shape
            or f0.ndim != 3 or f0.shape[2] != 3 or f0.dtype != np.uint8 or f1.dtype != np.uint8):
        raise ValueError(f"expected two HxWx3 uint8 frames of one size, got "
                         f"{getattr(f0, 'shape', f0)} {getattr(f0, 'dtype', '')}, "
                         f"{getattr(f1, 'shape', f1)} {getattr(f1, 'dtype', '')}")
    times = [float(t) for t in ts]
    if not times or not all(0.0 < t < 1.0 for t in times):
        raise ValueError(f"times must be in (0, 1), got {list(ts)}")
    return times


def _meta_int(meta: dict[str, str], key: str, default: str, path: Path) -> int:
    try:
        return int(meta.get(key, default))
    except ValueError:
        raise EngineError(f"{path} has bad m23 metadata {key}={meta.get(key)!r}") from None


class OrtBacked:
    """Attributes shared by the ONNX Runtime engines (``self.model`` is their
    :class:`OrtModel`)."""

    model: OrtModel

    @property
    def session(self) -> Any:
        """The ONNX Runtime session that runs now."""
        return self.model.session

    @property
    def provider(self) -> str:
        """The ONNX Runtime provider that runs now."""
        return self.model.provider

    def describe(self) -> str:
        """What runs, e.g. ``"CUDAExecutionProvider fp16"``."""
        return self.model.describe()


class _InterpolatorBase:
    """Input checks, padding to the size requirement and crop back, for every backend."""

    minimum = 1
    multiple_of = 1

    def _interpolate(self, f0: np.ndarray, f1: np.ndarray, ts: list[float]) -> list[np.ndarray]:
        raise NotImplementedError

    def __call__(self, f0: np.ndarray, f1: np.ndarray, ts: Sequence[float]) -> list[np.ndarray]:
        """Synthesize the frames at times ``ts`` (each in (0, 1)) between two frames, all times
        in one batched call.

        Args:
            f0, f1: (H, W, 3) uint8 RGB frames of one size.
            ts: times, 0 being ``f0`` and 1 ``f1``.

        Returns:
            One (H, W, 3) uint8 RGB frame per time.

        Raises:
            ValueError: frames of another shape or dtype, times outside (0, 1).
        """
        times = _check_pair(f0, f1, ts)
        p0, (h, w) = pad_to_requirement(f0, self.minimum, self.multiple_of)
        p1, _ = pad_to_requirement(f1, self.minimum, self.multiple_of)
        out = self._interpolate(p0, p1, times)
        if p0 is f0:
            return out
        return [np.ascontiguousarray(o[:h, :w]) for o in out]

    def interpolate(self, f0: np.ndarray, f1: np.ndarray,
                    ts: Sequence[float]) -> list[np.ndarray]:
        """The same as calling the engine."""
        return self(f0, f1, ts)


class OnnxInterpolator(OrtBacked, _InterpolatorBase):
    """Callable ``(frame0, frame1, times) -> frames`` on (H, W, 3) uint8 RGB frames.

    Hybrid models get their classical flow (DIS, settings from the model's metadata) computed
    once per pair; all times run as one batch.

    Args:
        path: the .onnx file (``m23 export interp``).
        provider: "auto", "cpu", "cuda" or "tensorrt" (:func:`create_session`).
        threads: ONNX Runtime intra-op threads (0: its default).
        fp16, fp16_path, cache_dir, device_id: see :class:`OrtModel`.

    Raises:
        EngineError: missing or damaged file, not an interpolation model, no provider.
    """

    def __init__(self, path: str | Path, provider: str = "auto", threads: int = DEFAULT_THREADS,
                 *, fp16: bool | None = None, fp16_path: str | Path | None = None,
                 cache_dir: str | Path | None = None, device_id: int = 0) -> None:
        from models.classical import DISConfig

        self.model = OrtModel(path, provider, threads, fp16=fp16, fp16_path=fp16_path,
                              cache_dir=cache_dir, device_id=device_id)
        self.meta = self.model.meta
        if self.meta.get("kind") != "interp":
            raise EngineError(f"{path} is not an interpolation model "
                              f"(kind {self.meta.get('kind')!r})")
        try:
            classical = json.loads(self.meta.get("classical", "null"))
            self.dis = DISConfig(**classical) if classical else None
        except (ValueError, TypeError) as exc:
            raise EngineError(f"{path} has bad m23 metadata 'classical': {exc}") from None
        p = Path(path)
        self.minimum = _meta_int(self.meta, "size_minimum", "1", p)
        self.multiple_of = _meta_int(self.meta, "size_multiple_of", "1", p)
        self.core_scale = _meta_int(self.meta, "core_scale", "4", p)
        self.candidates = _meta_int(self.meta, "candidates", "2", p)
        if self.candidates not in (2, 4):
            raise EngineError(f"{p} has bad m23 metadata candidates={self.candidates}")
        self._grid_cache: np.ndarray | None = None
        self.inputs = self.model.input_names()

    def _interpolate(self, f0: np.ndarray, f1: np.ndarray, ts: list[float]) -> list[np.ndarray]:
        if self.meta.get("pipeline") == "hybrid_core":
            return self._hybrid(f0, f1, ts)
        if self.meta.get("pipeline") == "hybrid_occ":
            return self._occ(f0, f1, ts)
        n = len(ts)
        x = _to_nchw([f0, f1])
        feed = {"img0": np.repeat(x[:1], n, 0), "img1": np.repeat(x[1:], n, 0),
                "t": np.asarray(ts, dtype=np.float32).reshape(n, 1, 1, 1)}
        return _to_u8(self.model.run(feed))

    def _grid(self, h: int, w: int) -> np.ndarray:
        """Pixel coordinates (H, W, 2) float32 (x, y) of an (h, w) frame, kept for the last size
        seen."""
        if self._grid_cache is None or self._grid_cache.shape[:2] != (h, w):
            gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            self._grid_cache = np.ascontiguousarray(np.dstack((gx, gy)))
        return self._grid_cache

    def _hybrid(self, f0: np.ndarray, f1: np.ndarray, ts: list[float]) -> list[np.ndarray]:
        """Classical flow, the learned core at 1/scale, bicubic warps and the blend (OpenCV).

        The full-resolution arithmetic uses OpenCV's vectorised kernels (addWeighted, add,
        exp) rather than NumPy expressions: the same values, without NumPy's temporaries.
        """
        import cv2

        from models.classical import dis_flows

        h, w = f0.shape[:2]
        scale = self.core_scale
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
        core = self.model.run(feed)
        grid = self._grid(h, w)
        out = []
        for k, t in enumerate(ts):
            # Residual flows and mask logit, bilinearly upscaled to full resolution (the flows
            # scaled to full-resolution pixels first, at low resolution where it is cheap).
            logit = cv2.resize(np.ascontiguousarray(core[k, 4]), (w, h),
                               interpolation=cv2.INTER_LINEAR)
            # Maps for the warps: p + flow_t(p), from the classical flows and the residual.
            maps = []
            for (a, b), c in ((((-(1 - t) * t), t * t), 0), ((((1 - t) ** 2), -t * (1 - t)), 2)):
                r = np.ascontiguousarray(core[k, c:c + 2].transpose(1, 2, 0)) * np.float32(scale)
                r = cv2.resize(r, (w, h), interpolation=cv2.INTER_LINEAR)
                m = cv2.add(cv2.addWeighted(f01, a, f10, b, 0.0), r)
                maps.append(cv2.add(m, grid))
            w0 = cv2.remap(f0, maps[0], None, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
            w1 = cv2.remap(f1, maps[1], None, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
            # Weight of frame 0: sigmoid(logit + log((1 - t) / t)) = 1 / (1 + e^-logit (t/(1-t))).
            e = cv2.exp(-logit)
            m0 = 1.0 / (1.0 + e * np.float32(t / (1 - t)))
            out.append(cv2.blendLinear(w0, w1, m0, 1.0 - m0))
        return out


    def _occ(self, f0: np.ndarray, f1: np.ndarray, ts: list[float]) -> list[np.ndarray]:
        """Classical flow and bicubic warps (and, with 4 candidates, two half-resolution
        candidates), the occlusion cues per block (OpenCV, shared with training:
        :func:`models.classical.occlusion_features`, :func:`models.classical.extra_candidates`),
        the fusion network (ONNX), the blend."""
        import cv2

        from models.classical import dis_flows, fusion_inputs

        h, w = f0.shape[:2]
        block = self.core_scale
        f01, f10 = dis_flows(f0, f1, self.dis)
        grid = self._grid(h, w)
        warps, extra, feats = [], [], []
        for t in ts:
            w0, w1, pair, cues = fusion_inputs(f0, f1, f01, f10, t, block, self.candidates, grid)
            extra.append(pair)
            feats.append(cues)
            warps.append((w0, w1))
        logits = self.model.run({"features": np.stack(feats)})
        out = []
        for k, t in enumerate(ts):
            w0, w1 = warps[k]
            pair = extra[k]
            if pair is not None:
                out.append(_blend4(w0, w1, *pair, logits[k], t, block))
                continue
            # Weight of frame 0 per block, sigmoid(logit + log((1 - t) / t)), then bilinearly
            # upsampled (cheaper than the sigmoid at full resolution; the model does the same).
            m = 1.0 / (1.0 + np.exp(-logits[k, 0]) * np.float32(t / (1 - t)))
            a = cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
            b = cv2.resize(1.0 - m, (w, h), interpolation=cv2.INTER_LINEAR)
            out.append(cv2.blendLinear(w0, w1, a, b))
        return out


def _blend4(w0: np.ndarray, w1: np.ndarray, c2: np.ndarray, c3: np.ndarray, logits: np.ndarray,
            t: float, block: int) -> np.ndarray:
    """The four-way fusion of :class:`models.occlusion.OcclusionFusion` with OpenCV: softmax
    of ``logits`` (4, hb, wb) plus the prior per block, weights bilinearly upsampled, the
    half-resolution pair (c2, c3) blended at its resolution, upsampled and edge-padded."""
    import cv2

    from models.classical import EXTRA_PRIOR

    h, w = w0.shape[:2]
    prior = np.log(np.array([1 - t, t, 1 - t, t], np.float64))
    prior[2:] += EXTRA_PRIOR
    z = logits.astype(np.float64) + prior[:, None, None]
    e = np.exp(z - z.max(0, keepdims=True))
    wts = np.ascontiguousarray((e / e.sum(0, keepdims=True)).transpose(1, 2, 0), np.float32)
    hh, hw = c2.shape[:2]
    c, d = (cv2.resize(np.ascontiguousarray(wts[..., k]), (hw, hh),
                       interpolation=cv2.INTER_LINEAR) for k in (2, 3))
    q = cv2.blendLinear(c2, c3, c, d)
    ch, cw = 2 * hh, 2 * hw
    q = cv2.resize(q, (cw, ch), interpolation=cv2.INTER_LINEAR)
    if (ch, cw) != (h, w):
        q = cv2.copyMakeBorder(q, 0, h - ch, 0, w - cw, cv2.BORDER_REPLICATE)
    # The full-resolution maps: w0's and w1's weights, their sum and the extra pair's
    # (bilinear resizing is linear, so the sums stay sums; single-channel resizes are faster
    # than one four-channel resize and a split).
    a, b, ab, cd = (cv2.resize(np.ascontiguousarray(m), (w, h), interpolation=cv2.INTER_LINEAR)
                    for m in (wts[..., 0], wts[..., 1], wts[..., 0] + wts[..., 1],
                              wts[..., 2] + wts[..., 3]))
    return cv2.blendLinear(cv2.blendLinear(w0, w1, a, b), q, ab, cd)


def torch_device(provider: str) -> str:
    """The torch device for a ``--provider`` choice: "cpu" for "cpu", else CUDA when torch
    sees a GPU ("auto" falls back to the CPU; "cuda"/"tensorrt" without a GPU is an error)."""
    import torch

    if provider not in ("auto", *_NAMES):
        raise EngineError(f"unknown provider {provider!r}; use auto, cpu, cuda or tensorrt")
    if provider == "cpu":
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if provider == "auto":
        return "cpu"
    raise EngineError(f"provider {provider!r} needs a CUDA GPU, and torch sees none")


class TorchInterpolator(_InterpolatorBase):
    """The PyTorch backend: an interpolation checkpoint behind the :class:`Interpolator`
    interface (for models in training; imports torch and the training code when built).

    Args:
        checkpoint: a checkpoint folder or its .safetensors file (``m23 train interp``).
        provider: "cpu", or "auto"/"cuda" for a CUDA GPU when torch sees one.
        threads: torch intra-op threads for the CPU (0: leave torch's setting).
        arch: the architecture, when the weights file does not name it.
        classical: DIS settings (``models.classical.DISConfig`` fields) replacing those of the
            registered architecture, e.g. the ones an exported ONNX file records.

    Raises:
        EngineError: a missing, damaged or non-interpolation checkpoint.
    """

    def __init__(self, checkpoint: str | Path, provider: str = "cpu",
                 threads: int = DEFAULT_THREADS, *, arch: str | None = None,
                 classical: dict[str, Any] | None = None) -> None:
        import torch

        from training.checkpoint import CheckpointError
        from training.inference import load_interpolator

        self.device = torch_device(provider)
        if threads < 0:
            raise EngineError(f"threads must be >= 0, got {threads}")
        if threads > 0 and self.device == "cpu":
            torch.set_num_threads(threads)
        try:
            self.arch, self._fn = load_interpolator(checkpoint, arch)
        except CheckpointError as exc:
            raise EngineError(str(exc)) from None
        from models.registry import get_spec

        spec = get_spec(self.arch)
        self.minimum, self.multiple_of = spec.size.minimum, spec.size.multiple_of
        if classical is not None:
            from models.classical import DISConfig

            self._fn.dis = DISConfig(**classical)
        self._fn.model.to(self.device)
        self.provider = f"torch {self.device}"

    def _interpolate(self, f0: np.ndarray, f1: np.ndarray, ts: list[float]) -> list[np.ndarray]:
        import torch

        fn = self._fn
        if self.device == "cpu":
            return fn(f0, f1, ts)
        # training.inference.TorchInterpolator works on the CPU; run its model on the GPU.
        from models.classical import dis_flows

        n = len(ts)
        dev = self.device
        with torch.inference_mode():
            x0 = torch.from_numpy(f0).to(dev).permute(2, 0, 1)[None].float().div_(255)
            x1 = torch.from_numpy(f1).to(dev).permute(2, 0, 1)[None].float().div_(255)
            t = torch.tensor(ts, dtype=torch.float32, device=dev)
            fl01 = fl10 = None
            if fn.dis is not None:
                a, b = dis_flows(f0, f1, fn.dis)
                fl01 = torch.from_numpy(a).to(dev).permute(2, 0, 1)[None].expand(n, -1, -1, -1)
                fl10 = torch.from_numpy(b).to(dev).permute(2, 0, 1)[None].expand(n, -1, -1, -1)
            out = fn.model(x0.expand(n, -1, -1, -1), x1.expand(n, -1, -1, -1), t, fl01, fl10)
            arr = out.mul(255).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
            return [np.ascontiguousarray(a) for a in arr.cpu().numpy()]
