"""One open video in the player: decoder -> pipeline -> presentation clock, no Qt.

:class:`Playback` drives :class:`app.pipeline.Pipeline` (decoding, scene cuts, frame generation,
upscaling in worker threads with bounded queues) and a :class:`~app.player.clock.PresentationClock`
that shows its frames at their timestamps. Settings change while it plays
(:meth:`Playback.request`): models are loaded in a background thread, then the pipeline's
settings are updated, so a toggle takes effect within a few frames without restarting.

Engines are wrapped so that a failure while running (a provider error, say) never stops the
video: the failing stage is reported once through ``notify`` and from then on passes frames
through (repeats for frame generation, a bilinear resize for upscaling). While the clock says
processing is behind, the pipeline passes source frames through instead of generating, and the
upscaler does a bilinear resize instead of running its model: the video keeps its speed and the
on-screen display says so.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from app.player.clock import ClockStats, PresentationClock
from app.video import Decoder, Frame, VideoInfo

__all__ = ["Playback", "Snapshot", "provider_label"]

log = logging.getLogger(__name__)

_PROVIDER_LABELS = {"CPUExecutionProvider": "CPU", "CUDAExecutionProvider": "CUDA",
                    "TensorrtExecutionProvider": "TensorRT"}


def provider_label(engine: object) -> str:
    """A short name of what runs an engine: "CPU", "CUDA", "TensorRT" (or the raw name)."""
    raw = str(getattr(engine, "provider", "?"))
    for key, label in _PROVIDER_LABELS.items():
        if raw.startswith(key):
            return label
    return raw


class _GuardedInterpolator:
    """An interpolator that, once it fails, reports it and repeats the nearer source frame."""

    def __init__(self, engine: Any, notify: Callable[[str], None]) -> None:
        self.engine = engine
        self.notify = notify
        self.failed = False
        self.provider = provider_label(engine)

    def __call__(self, f0: np.ndarray, f1: np.ndarray, ts: Sequence[float]) -> list[np.ndarray]:
        """One (H, W, 3) uint8 RGB frame per t in (0, 1)."""
        if not self.failed:
            try:
                return list(self.engine(f0, f1, ts))
            except Exception as exc:  # any engine failure: report once, keep playing
                self.failed = True
                self.notify(f"frame generation failed ({provider_label(self.engine)}): "
                            f"{str(exc).splitlines()[0] if str(exc) else exc!r}; "
                            "playing without it")
        return [f0 if t <= 0.5 else f1 for t in ts]


class _GuardedUpscaler:
    """An upscaler with a bilinear pass-through (when behind or failed) that remembers the input
    of its recent outputs (for the split view)."""

    def __init__(self, engine: Any, scale: int, notify: Callable[[str], None],
                 behind: Callable[[], bool]) -> None:
        self.engine = engine
        self.scale = scale
        self.notify = notify
        self.behind = behind
        self.failed = False
        self.passed = 0
        self.provider = provider_label(engine)
        self._recent: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=64)
        self._lock = threading.Lock()

    def _resize(self, img: np.ndarray) -> np.ndarray:
        import cv2

        h, w = img.shape[:2]
        return cv2.resize(img, (w * self.scale, h * self.scale), interpolation=cv2.INTER_LINEAR)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (s*H, s*W, 3) uint8 RGB."""
        out: np.ndarray | None = None
        if not self.failed and not self.behind():
            try:
                out = self.engine(img)
            except Exception as exc:  # any engine failure: report once, keep playing
                self.failed = True
                self.notify(f"upscaling x{self.scale} failed ({self.provider}): "
                            f"{str(exc).splitlines()[0] if str(exc) else exc!r}; playing "
                            "without it")
        if out is None:
            out = self._resize(img)
            self.passed += 1
        with self._lock:
            self._recent.append((out, img))
        return out

    def source_of(self, out: np.ndarray) -> np.ndarray | None:
        """The input of a recent output (identity), or None."""
        with self._lock:
            for o, i in reversed(self._recent):
                if o is out:
                    return i
        return None


@dataclass
class Snapshot:
    """What the on-screen display shows.

    Attributes:
        source_fps: the file's frame rate.
        nominal_fps: the output frame rate the settings ask for.
        shown_fps: frames actually presented per second (last second).
        ms: milliseconds per frame of each pipeline stage.
        queues: frames waiting in each pipeline queue.
        generated, passed, dropped, late, repeated: frames generated; source frames passed
            through instead of being processed (frames not generated + upscales skipped);
            frames dropped by the pipeline; frames the clock dropped as too late; repeats.
        behind: processing is behind (passing through).
        provider: "interp: CPU, x2: CPU"-style text, "-" when no model runs.
        settings: "2x" / "60 fps" / "off" for frame generation, and the upscale factor.
        size: (width, height) of the source.
        clock: the clock's own counters.
    """

    source_fps: float = 0.0
    nominal_fps: float = 0.0
    shown_fps: float = 0.0
    ms: dict[str, float] = field(default_factory=dict)
    queues: dict[str, int] = field(default_factory=dict)
    generated: int = 0
    passed: int = 0
    dropped: int = 0
    late: int = 0
    repeated: int = 0
    behind: bool = False
    provider: str = "-"
    interpolation: str = "off"
    upscale: int = 1
    size: tuple[int, int] = (0, 0)
    clock: ClockStats = field(default_factory=ClockStats)


class Playback:
    """A video playing through the pipeline, presented by its own clock.

    Args:
        path: the video file.
        present: called in the clock thread with each frame at its time (must be cheap).
        notify: called (any thread) with a one-line message for the user (errors, warnings).
        models_dir: folder of models (or None: the shipped ``assets/``), see
            :func:`app.discovery.find_model`.
        provider: ONNX Runtime provider choice ("auto", "cpu", "cuda", "tensorrt").
        threads: ONNX Runtime intra-op threads per engine.
        media_time: an audio clock (seconds) for the video to follow, or None.
        on_end: called when the video reaches its end.
        queue_size: capacity of each pipeline queue.

    Raises:
        app.video.VideoError: the file cannot be read.
    """

    def __init__(self, path: str | Path, present: Callable[[Frame], None],
                 notify: Callable[[str], None], *, models_dir: str | Path | None = None,
                 provider: str = "auto", threads: int = 1,
                 media_time: Callable[[], float | None] | None = None,
                 on_end: Callable[[], None] | None = None, queue_size: int = 4) -> None:
        from app.pipeline import Engines, Pipeline, Settings

        self.path = Path(path)
        self.notify = notify
        self.models_dir = models_dir
        self.provider = provider
        self.threads = threads
        self.decoder = Decoder(self.path, queue_size=queue_size)
        self.info: VideoInfo = self.decoder.info
        self._interp: _GuardedInterpolator | None = None
        self._up: dict[int, _GuardedUpscaler] = {}
        self._behind = False
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="m23-models")
        engines = Engines(self._get_interp, self._get_up)
        self.pipeline = Pipeline(self.decoder, engines,
                                 Settings(passthrough_when_behind=True), queue_size=queue_size)
        self.clock = PresentationClock(self.pipeline, present, media_time=media_time,
                                       on_behind=self._on_behind, on_end=on_end,
                                       on_error=self._on_error)
        self.last_source: Frame | None = None

    # ------------------------------------------------------------------ engines
    def _get_interp(self) -> _GuardedInterpolator:
        if self._interp is None:  # only reachable if settings were changed behind our back
            from app.pipeline import PipelineError

            raise PipelineError("no interpolation model loaded")
        return self._interp

    def _get_up(self, scale: int) -> _GuardedUpscaler:
        if scale not in self._up:
            from app.pipeline import PipelineError

            raise PipelineError(f"no x{scale} upscaling model loaded")
        return self._up[scale]

    def _load_interp(self) -> None:
        from app.discovery import find_model
        from app.engines import OnnxInterpolator

        if self._interp is None:
            path = find_model("interp", models_dir=self.models_dir)
            engine = OnnxInterpolator(path, provider=self.provider, threads=self.threads)
            self._interp = _GuardedInterpolator(engine, self.notify)
            log.info("frame generation: %s on %s", path.name, self._interp.provider)

    def _load_up(self, scale: int) -> None:
        from app.discovery import find_model
        from app.upscale import OnnxUpscaler

        if scale not in self._up:
            path = find_model("sr", scale, models_dir=self.models_dir)
            engine = OnnxUpscaler(path, provider=self.provider, threads=self.threads,
                                  scale=scale)
            self._up[scale] = _GuardedUpscaler(engine, scale, self.notify,
                                               lambda: self._behind)
            log.info("upscaling x%d: %s on %s", scale, path.name, self._up[scale].provider)

    # ------------------------------------------------------------------ control
    def start(self, paused: bool = False) -> Playback:
        """Start decoding, processing and the clock."""
        self.clock.set_paused(paused)
        self.pipeline.start()
        self.clock.start()
        return self

    def close(self) -> None:
        """Stop every thread."""
        self.clock.stop()
        self.pipeline.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def request(self, *, factor: int | None = None, target_fps: Fraction | None = None,
                upscale: int | None = None) -> Any:
        """Change frame generation (``factor`` 1 = off, or a ``target_fps``) and/or upscaling
        (1, 2, 4) while playing. Models load in a background thread; a missing or broken model
        is reported through ``notify`` and that setting stays as it was. Returns a
        ``concurrent.futures.Future`` that completes when the change is applied (its result:
        the pipeline's new settings)."""
        return self._executor.submit(self._apply, factor, target_fps, upscale)

    def _apply(self, factor: int | None, target_fps: Fraction | None,
               upscale: int | None) -> Any:
        from app.engines import EngineError
        from app.pipeline import PipelineError

        changes: dict[str, Any] = {}
        if factor is not None or target_fps is not None:
            want_factor = 1 if target_fps is not None else int(factor or 1)
            try:
                if want_factor > 1 or target_fps is not None:
                    self._load_interp()
                    if self._interp is not None and self._interp.failed:
                        raise EngineError("frame generation failed earlier in this session")
                changes.update(factor=want_factor, target_fps=target_fps)
            except (EngineError, PipelineError, OSError) as exc:
                self.notify(f"frame generation unavailable: {exc}")
        if upscale is not None:
            try:
                if upscale > 1:
                    self._load_up(upscale)
                    if self._up[upscale].failed:
                        raise EngineError(f"upscaling x{upscale} failed earlier in this session")
                changes["upscale"] = upscale
            except (EngineError, PipelineError, OSError) as exc:
                self.notify(f"upscaling x{upscale} unavailable: {exc}")
        if changes:
            try:
                return self.pipeline.update(**changes)
            except PipelineError as exc:
                self.notify(str(exc))
        return self.pipeline.settings

    def seek(self, seconds: float) -> None:
        """Continue from the first frame at or after ``seconds``: the queues are flushed, the
        next frame is shown at once, and source frames pass through until the pipeline has
        refilled (the clock reports it caught up)."""
        d = self.info.duration
        top = float(d) if d is not None else seconds
        target = Fraction(max(0.0, min(seconds, top))).limit_denominator(1_000_000)
        self._on_behind(True)
        self.pipeline.seek(target + self.info.start)
        self.clock.flush()
        self.clock.mark_behind()

    def set_paused(self, paused: bool) -> None:
        """Pause or resume."""
        self.clock.set_paused(paused)

    def _on_behind(self, behind: bool) -> None:
        self._behind = behind
        self.pipeline.set_behind(behind)

    def _on_error(self, exc: BaseException) -> None:
        self.notify(f"playback stopped: {str(exc).splitlines()[0] if str(exc) else exc!r}")

    # ------------------------------------------------------------------ display
    def source_of(self, frame: Frame) -> np.ndarray:
        """The source picture behind an output frame, (h, w, 3) uint8 at the source size: the
        frame itself before upscaling; for a generated frame the last source frame."""
        img = frame.rgb
        for up in list(self._up.values()):
            found = up.source_of(img)
            if found is not None:
                img = found
                break
        if frame.kind == "source":
            self.last_source = replace_rgb(frame, img)
            return img
        if self.last_source is not None and self.last_source.epoch == frame.epoch:
            return self.last_source.rgb
        return img

    def snapshot(self) -> Snapshot:
        """The numbers of the on-screen display."""
        from app.pipeline import output_rate

        st = self.pipeline.stats()
        s = self.pipeline.settings
        clock = self.clock.stats()
        parts = []
        if s.interpolating and self._interp is not None:
            parts.append(f"interp {self._interp.provider}")
        if s.upscale > 1 and s.upscale in self._up:
            parts.append(f"x{s.upscale} {self._up[s.upscale].provider}")
        passed_up = sum(u.passed for u in self._up.values())
        return Snapshot(
            source_fps=float(self.info.fps), nominal_fps=float(output_rate(self.info.fps, s)),
            shown_fps=clock.fps, ms=dict(st.ms), queues=dict(st.queues),
            generated=st.generated, passed=st.dropped + passed_up, dropped=st.dropped,
            late=clock.late_dropped, repeated=st.repeated, behind=clock.behind,
            provider=", ".join(parts) if parts else "-",
            interpolation=(f"{float(s.target_fps):g} fps" if s.target_fps is not None
                           else f"{s.factor}x" if s.factor > 1 else "off"),
            upscale=s.upscale, size=(self.info.width, self.info.height), clock=clock)


def replace_rgb(frame: Frame, rgb: np.ndarray) -> Frame:
    """A copy of ``frame`` with another picture."""
    return Frame(rgb, frame.pts, frame.index, frame.kind, frame.t, frame.epoch)
