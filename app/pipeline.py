"""The video pipeline shared by ``m23 render`` and the player.

::

    source thread   Decoder.frames() (PyAV) -> Frame(rgb uint8 HxWx3, pts Fraction seconds)
      | queue (bounded)
    interp thread   scene-cut detector on thumbnails; output times of each source interval
      |             from exact rational arithmetic; one batched interpolator call per pair
      | queue (bounded)
    upscale thread  upscaler (x2/x4) or pass-through
      | queue (bounded)
    consumer        Pipeline.read() in the caller's thread (the encoder in render, a Qt timer
                    in the player), or Pipeline.run(sink)

Timing. Source frames pass through unchanged with their own pts. With ``factor`` N the interval
[p0, p1) between two source frames gets output frames at p0 + (p1 - p0) * k / N, k = 1..N-1, each
generated at timestep k/N. With ``target_fps`` R the output times are a grid a + k/R (a: the
first frame's pts, or the pts at which that setting began); a time that falls on a source frame
passes it through, any other is generated at timestep (t - p0) / (p1 - p0). Both follow the
stream's own timestamps, so variable frame rate input keeps its timing. After the last source
frame the output continues up to the end of that frame's display time (its pts plus the last
interval) with repeats of it, so output and input durations agree within one output frame.
Every output pts is a multiple of :func:`output_time_base`.

Scene cuts. :class:`SceneCutDetector` compares 64x36 grey thumbnails (mean absolute difference
in [0, 1]); above the threshold no frame is generated inside that interval: each output time
gets the nearer source frame (``kind == "repeat"``).

For the player (everything below is safe to call from another thread while it runs):

- :meth:`Pipeline.update` changes the settings (interpolation off / factor / target fps,
  upscale 1/2/4, scene-cut detection, passthrough) and they take effect at the next source
  interval (within a few frames: the queues hold ``queue_size`` frames each).
- :meth:`Pipeline.seek` continues from the first frame at or after a pts: it flushes the queues;
  frames of the old position never reach :meth:`Pipeline.read` (each carries an ``epoch``).
  After the end of the stream, a seek restarts decoding.
- :meth:`Pipeline.stats` returns a :class:`PipelineStats` snapshot: milliseconds per frame of
  each stage (exponential moving average), queue depths, counters of source (passed through),
  generated, repeated and dropped frames and of scene cuts.
- ``Settings.passthrough_when_behind`` with :meth:`Pipeline.set_behind`: a sink that is late
  says so, and until it says otherwise the interpolation stage passes source frames through
  instead of generating (the frames not generated are counted as dropped).
- :meth:`Pipeline.stop` ends every thread (also when blocked on a full queue) and closes the
  decoder; the pipeline is a context manager that stops on exit.

No torch here: engines are ONNX Runtime (``app.engines``, ``app.upscale``) or the classical
baselines (OpenCV), created lazily through :class:`Engines`.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import numpy as np

from app.video import Decoder, Frame

__all__ = ["PipelineError", "Settings", "PipelineStats", "SceneCutDetector", "Engines",
           "Pipeline", "plan_interval", "output_time_base", "output_rate", "parse_rate",
           "DisInterpolator", "BicubicUpscaler", "Interpolator", "Upscaler"]

log = logging.getLogger(__name__)


class PipelineError(RuntimeError):
    """Bad pipeline settings or a stage that failed, with a one-line message for the user."""


class Interpolator(Protocol):
    """``(f0, f1, ts) -> frames``: (H, W, 3) uint8 RGB frames, one output per t in (0, 1)."""

    def __call__(self, f0: np.ndarray, f1: np.ndarray, ts: Sequence[float]) -> list[np.ndarray]:
        ...


class Upscaler(Protocol):
    """``img -> img``: (H, W, 3) uint8 RGB to (s*H, s*W, 3) uint8 RGB."""

    def __call__(self, img: np.ndarray) -> np.ndarray:
        ...


def parse_rate(text: str) -> Fraction:
    """A frame rate from "60", "59.94" or "60000/1001" (exact for the fraction form).

    Raises:
        PipelineError: not a positive number.
    """
    try:
        rate = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise PipelineError(f"bad frame rate {text!r}; use e.g. 60, 59.94 or 60000/1001") \
            from None
    if rate <= 0 or rate > 1000:
        raise PipelineError(f"frame rate must be in (0, 1000], got {text}")
    return rate


@dataclass(frozen=True)
class Settings:
    """What the pipeline does; replaced as a whole by :meth:`Pipeline.update`.

    Attributes:
        factor: 1 (interpolation off) or N >= 2 output frames per source interval.
        target_fps: output frame rate (exclusive with ``factor`` > 1); None: off.
        upscale: 1 (off), 2 or 4.
        scene_cut: detect scene cuts (no generated frame across a cut).
        scene_threshold: cut when the thumbnails' mean absolute difference (0..1) exceeds it.
        passthrough_when_behind: pass source frames through while the sink says it is late.
    """

    factor: int = 1
    target_fps: Fraction | None = None
    upscale: int = 1
    scene_cut: bool = True
    scene_threshold: float = 0.15
    passthrough_when_behind: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.factor, int) or self.factor < 1 or self.factor > 16:
            raise PipelineError(f"interpolation factor must be an integer from 1 to 16, got "
                                f"{self.factor}")
        if self.target_fps is not None:
            if self.factor != 1:
                raise PipelineError("give an interpolation factor or a target frame rate, "
                                    "not both")
            if self.target_fps <= 0:
                raise PipelineError(f"target frame rate must be positive, got "
                                    f"{self.target_fps}")
        if self.upscale not in (1, 2, 4):
            raise PipelineError(f"upscale must be 1, 2 or 4, got {self.upscale}")
        if not 0.0 < self.scene_threshold <= 1.0:
            raise PipelineError(f"scene threshold must be in (0, 1], got {self.scene_threshold}")

    @property
    def interpolating(self) -> bool:
        """Whether frames are generated at all."""
        return self.factor > 1 or self.target_fps is not None


def output_time_base(src_time_base: Fraction, settings: Settings) -> Fraction:
    """A time base of which every output pts is a multiple (source pts are multiples of
    ``src_time_base``)."""
    tb = Fraction(src_time_base)
    if settings.target_fps is not None:
        r = Fraction(settings.target_fps)
        return Fraction(1, math.lcm(tb.denominator, r.numerator))
    return tb / settings.factor


def output_rate(src_fps: Fraction, settings: Settings) -> Fraction:
    """The nominal output frame rate."""
    if settings.target_fps is not None:
        return Fraction(settings.target_fps)
    return Fraction(src_fps) * settings.factor


def plan_interval(p0: Fraction, p1: Fraction, settings: Settings,
                  anchor: Fraction | None = None) -> list[tuple[Fraction, Fraction]]:
    """Output times in the half-open interval [p0, p1) between two source frames.

    Args:
        p0, p1: pts of two consecutive source frames (seconds, p0 < p1).
        settings: the factor or target frame rate.
        anchor: the pts at which the target-fps grid starts (default p0).

    Returns:
        (pts, t) pairs in increasing order, t = (pts - p0) / (p1 - p0) in [0, 1); t == 0 is the
        source frame at p0 itself.
    """
    if p1 <= p0:
        raise PipelineError(f"non-increasing timestamps {p0} -> {p1}")
    span = p1 - p0
    if settings.target_fps is not None:
        r = Fraction(settings.target_fps)
        a = p0 if anchor is None else anchor
        k = math.ceil((p0 - a) * r)
        out: list[tuple[Fraction, Fraction]] = []
        while True:
            t = a + Fraction(k) / r
            if t >= p1:
                return out
            if t >= p0:
                out.append((t, (t - p0) / span))
            k += 1
    n = settings.factor
    return [(p0 + span * Fraction(k, n), Fraction(k, n)) for k in range(n)]


class SceneCutDetector:
    """Scene cuts from 64x36 grey thumbnails: the mean absolute difference in [0, 1].

    Keeps the last thumbnail, so a stream of consecutive pairs costs one thumbnail per frame.
    """

    def __init__(self, threshold: float = 0.15, size: tuple[int, int] = (64, 36)) -> None:
        self.threshold = threshold
        self.size = size
        self._last: tuple[int, np.ndarray] | None = None

    def thumbnail(self, rgb: np.ndarray) -> np.ndarray:
        """(36, 64) float32 grey thumbnail in [0, 1] of an (H, W, 3) uint8 RGB frame."""
        import cv2

        small = cv2.resize(rgb, self.size, interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32) * (1.0 / 255.0)

    def _thumb(self, rgb: np.ndarray) -> np.ndarray:
        if self._last is not None and self._last[0] == id(rgb):
            return self._last[1]
        return self.thumbnail(rgb)

    def score(self, f0: np.ndarray, f1: np.ndarray) -> float:
        """Mean absolute difference of the two frames' thumbnails, in [0, 1]."""
        a = self._thumb(f0)
        b = self.thumbnail(f1)
        self._last = (id(f1), b)
        return float(np.mean(np.abs(a - b)))

    def is_cut(self, f0: np.ndarray, f1: np.ndarray) -> bool:
        """Whether a scene cut lies between ``f0`` and ``f1``."""
        return self.score(f0, f1) > self.threshold


class DisInterpolator:
    """The classical baseline: OpenCV DIS flow both ways (once per pair), each frame warped to
    time t and blended with weights (1 - t, t) (``models.classical``)."""

    def __init__(self, preset: str = "ultrafast") -> None:
        from models.classical import DISConfig

        self.config = DISConfig(preset)
        self.provider = f"opencv dis {preset}"

    def __call__(self, f0: np.ndarray, f1: np.ndarray, ts: Sequence[float]) -> list[np.ndarray]:
        """One (H, W, 3) uint8 RGB frame per t in (0, 1)."""
        import cv2

        from models.classical import dis_flows, warp_backward_np

        f01, f10 = dis_flows(f0, f1, self.config)
        out = []
        for t in ts:
            w0 = warp_backward_np(f0, -t * f01)
            w1 = warp_backward_np(f1, -(1.0 - t) * f10)
            out.append(cv2.addWeighted(w0, 1.0 - t, w1, t, 0.0))
        return out


class BicubicUpscaler:
    """The classical upscaling baseline: ``cv2.resize`` with INTER_CUBIC."""

    def __init__(self, scale: int) -> None:
        self.scale = scale
        self.provider = "opencv bicubic"

    def __call__(self, img: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 -> (s*H, s*W, 3) uint8."""
        import cv2

        h, w = img.shape[:2]
        return cv2.resize(img, (w * self.scale, h * self.scale), interpolation=cv2.INTER_CUBIC)


class Engines:
    """Interpolation and upscaling engines, created on first use and kept.

    Args:
        make_interpolator: builds the interpolator (None: interpolation unavailable).
        make_upscaler: builds the upscaler for a scale, 2 or 4 (None: upscaling unavailable).
    """

    def __init__(self, make_interpolator: Callable[[], Interpolator] | None = None,
                 make_upscaler: Callable[[int], Upscaler] | None = None) -> None:
        self._make_interp = make_interpolator
        self._make_up = make_upscaler
        self._interp: Interpolator | None = None
        self._up: dict[int, Upscaler] = {}
        self._lock = threading.Lock()

    def interpolator(self) -> Interpolator:
        """The interpolator (built on the first call)."""
        with self._lock:
            if self._interp is None:
                if self._make_interp is None:
                    raise PipelineError("no interpolation model is available")
                self._interp = self._make_interp()
            return self._interp

    def upscaler(self, scale: int) -> Upscaler:
        """The upscaler for ``scale`` (built on the first call)."""
        with self._lock:
            if scale not in self._up:
                if self._make_up is None:
                    raise PipelineError("no upscaling model is available")
                self._up[scale] = self._make_up(scale)
            return self._up[scale]

    @classmethod
    def onnx(cls, interp_model: str | Path | None, sr_models: dict[int, Path],
             provider: str = "auto", threads: int = 1) -> Engines:
        """ONNX Runtime engines (``app.engines.OnnxInterpolator``, ``app.upscale.OnnxUpscaler``)
        for the given model files; a scale missing from ``sr_models`` is an error when used."""
        def interp() -> Interpolator:
            from app.engines import OnnxInterpolator

            if interp_model is None:
                raise PipelineError("no interpolation model given")
            return OnnxInterpolator(interp_model, provider=provider, threads=threads)

        def up(scale: int) -> Upscaler:
            from app.upscale import OnnxUpscaler

            if scale not in sr_models:
                raise PipelineError(f"no x{scale} super-resolution model given")
            return OnnxUpscaler(sr_models[scale], provider=provider, threads=threads,
                                scale=scale)

        return cls(interp, up)

    @classmethod
    def classical(cls, preset: str = "ultrafast") -> Engines:
        """The baselines: DIS interpolation and bicubic upscaling."""
        return cls(lambda: DisInterpolator(preset), BicubicUpscaler)


@dataclass
class PipelineStats:
    """A snapshot of the pipeline's counters (see :meth:`Pipeline.stats`).

    Attributes:
        ms: milliseconds per frame of each stage ("decode", "detect", "interpolate" (per
            generated frame), "upscale", "sink"), exponential moving averages.
        queues: frames waiting in each queue ("decoded", "interpolated", "output").
        source: source frames passed through.
        generated: frames made by the interpolator.
        repeated: source frames repeated (scene cuts, the tail after the last frame).
        dropped: frames not generated because the sink was behind.
        cuts: scene cuts detected.
        output: frames handed to the consumer.
        elapsed: seconds since start.
    """

    ms: dict[str, float] = field(default_factory=dict)
    queues: dict[str, int] = field(default_factory=dict)
    source: int = 0
    generated: int = 0
    repeated: int = 0
    dropped: int = 0
    cuts: int = 0
    output: int = 0
    elapsed: float = 0.0

    @property
    def fps(self) -> float:
        """Output frames per second of wall time since start."""
        return self.output / self.elapsed if self.elapsed > 0 else 0.0


class _End:
    """End of the stream of one epoch."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch


class Pipeline:
    """Decode -> scene-cut detection and interpolation -> upscaling -> consumer, in threads.

    Args:
        source: a :class:`~app.video.Decoder` (seekable) or any iterable of :class:`Frame`
            with increasing pts.
        engines: where interpolators and upscalers come from.
        settings: initial settings.
        queue_size: capacity of each queue between stages.

    Use ``with Pipeline(...) as p: for frame in p: ...`` or ``p.start(); p.read()``.
    """

    def __init__(self, source: Decoder | Iterable[Frame], engines: Engines,
                 settings: Settings | None = None, queue_size: int = 4) -> None:
        self.source = source
        self.engines = engines
        self._settings = settings or Settings()
        self._lock = threading.Lock()
        self._stats = PipelineStats()
        self._stop = threading.Event()
        self._seek_event = threading.Event()
        self._behind = False
        self._epoch = 0
        # The epoch whose end was read: read() keeps answering None for it, so a reader that
        # took the end marker just before a seek's bookkeeping can ask again and still see it.
        self._ended_epoch = -1
        self._qs = [queue.Queue[Any](maxsize=max(1, queue_size)) for _ in range(3)]
        self._threads: list[threading.Thread] = []
        self._t0 = 0.0
        self._error: BaseException | None = None

    # ------------------------------------------------------------------ control
    @property
    def settings(self) -> Settings:
        """The current settings."""
        return self._settings

    def update(self, **changes: Any) -> Settings:
        """Change settings while running (keyword arguments of :class:`Settings`); returns the
        new settings. Raises :class:`PipelineError` for invalid values (nothing changes)."""
        if "target_fps" in changes and changes["target_fps"] is not None:
            changes["target_fps"] = Fraction(changes["target_fps"])
        with self._lock:
            new = replace(self._settings, **changes)
            self._settings = new
        return new

    def set_behind(self, behind: bool) -> None:
        """The sink says it is late (True) or has caught up (False)."""
        self._behind = bool(behind)

    def seek(self, pts: Fraction | float) -> None:
        """Continue from the first source frame at or after ``pts`` seconds; the queues are
        flushed and frames from before the seek are never returned."""
        if not isinstance(self.source, Decoder):
            raise PipelineError("this source cannot seek")
        with self._lock:
            self._epoch += 1
            epoch = self._epoch
        self.source.seek(Fraction(pts), epoch)
        for q in self._qs:
            _drain(q)
        self._seek_event.set()

    def stats(self) -> PipelineStats:
        """A copy of the counters, with the current queue depths."""
        with self._lock:
            s = replace(self._stats, ms=dict(self._stats.ms))
        s.queues = {"decoded": self._qs[0].qsize(), "interpolated": self._qs[1].qsize(),
                    "output": self._qs[2].qsize()}
        s.elapsed = time.perf_counter() - self._t0 if self._t0 else 0.0
        return s

    def start(self) -> Pipeline:
        """Start the threads."""
        if self._threads:
            return self
        self._t0 = time.perf_counter()
        for name, fn in (("source", self._source_loop), ("interp", self._interp_loop),
                         ("upscale", self._upscale_loop)):
            t = threading.Thread(target=self._guard, args=(fn,), name=f"m23-{name}",
                                 daemon=True)
            self._threads.append(t)
            t.start()
        return self

    def stop(self) -> None:
        """Stop every thread and close the decoder (returns when they have ended)."""
        self._stop.set()
        self._seek_event.set()
        if isinstance(self.source, Decoder):
            self.source.stop()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=10.0)

    def __enter__(self) -> Pipeline:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------------ consumer side
    def read(self, timeout: float | None = None) -> Frame | None:
        """The next output frame; None at the end of the stream (of the current seek).

        Raises:
            queue.Empty: nothing within ``timeout`` seconds.
            any error of a stage (VideoError, EngineError, PipelineError, ...).
        """
        q = self._qs[2]
        deadline = None if timeout is None else time.perf_counter() + timeout
        while True:
            if self._error is not None:
                raise self._error
            if self._ended_epoch == self._epoch:
                return None
            try:
                item = q.get(timeout=0.05)
            except queue.Empty:
                if deadline is not None and time.perf_counter() > deadline:
                    raise
                if self._stop.is_set() and self._error is None and not any(
                        t.is_alive() for t in self._threads):
                    return None
                continue
            if isinstance(item, _End):
                if item.epoch == self._epoch:
                    self._ended_epoch = item.epoch
                    return None
                continue
            if item.epoch == self._epoch:
                with self._lock:
                    self._stats.output += 1
                return item  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[Frame]:
        self.start()
        while True:
            f = self.read()
            if f is None:
                return
            yield f

    def run(self, sink: Callable[[Frame], None]) -> PipelineStats:
        """Feed every output frame to ``sink`` in this thread; returns the final stats."""
        for f in self:
            t0 = time.perf_counter()
            sink(f)
            self._time("sink", t0, 1)
        return self.stats()

    # ------------------------------------------------------------------ stages
    def _time(self, stage: str, t0: float, n: int) -> None:
        ms = (time.perf_counter() - t0) * 1000.0 / max(1, n)
        with self._lock:
            old = self._stats.ms.get(stage)
            self._stats.ms[stage] = ms if old is None else 0.9 * old + 0.1 * ms

    def _count(self, **n: int) -> None:
        with self._lock:
            for k, v in n.items():
                setattr(self._stats, k, getattr(self._stats, k) + v)

    def _put(self, stage: int, item: Any) -> bool:
        q = self._qs[stage]
        while not self._stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _get(self, stage: int) -> Any:
        q = self._qs[stage]
        while not self._stop.is_set():
            try:
                return q.get(timeout=0.05)
            except queue.Empty:
                continue
        return None

    def _guard(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except BaseException as exc:  # handed to the consumer by read()
            log.debug("pipeline stage failed: %r", exc)
            if self._error is None:
                self._error = exc
            self._stop.set()

    def _source_loop(self) -> None:
        decoder = self.source if isinstance(self.source, Decoder) else None
        while not self._stop.is_set():
            it: Iterable[Frame] = (decoder.frames() if decoder is not None
                                   else self.source)  # type: ignore[assignment]
            t0 = time.perf_counter()
            for f in it:
                self._time("decode", t0, 1)
                if decoder is None:
                    f.epoch = self._epoch
                if not self._put(0, f):
                    return
                t0 = time.perf_counter()
            # The end belongs to the stream that ended: a seek that came after its last frame
            # has a newer epoch, and its frames are still to come.
            if not self._put(0, _End(decoder.ended_epoch if decoder is not None else self._epoch)):
                return
            if decoder is None:
                return
            # At the end: wait for a seek (the player) or stop.
            while not self._stop.is_set() and not decoder.seek_pending:
                self._seek_event.wait(0.1)
                self._seek_event.clear()

    def _interp_loop(self) -> None:
        prev: Frame | None = None
        last_span: Fraction | None = None
        detector: SceneCutDetector | None = None
        anchor: tuple[Fraction, Fraction | None] | None = None  # (pts, target fps)
        while True:
            item = self._get(0)
            if item is None:
                return
            if isinstance(item, _End):
                if prev is not None and item.epoch == prev.epoch:
                    span = last_span if last_span is not None else Fraction(1, 25)
                    self._emit_pair(prev, None, prev.pts + span, anchor)
                prev, last_span, anchor = None, None, None
                if not self._put(1, item):
                    return
                continue
            f: Frame = item
            if f.epoch != self._epoch:
                continue
            if prev is not None and prev.epoch != f.epoch:
                prev, last_span, anchor = None, None, None
            s = self._settings
            if s.target_fps is not None and (anchor is None or anchor[1] != s.target_fps):
                anchor = (prev.pts if prev is not None else f.pts, s.target_fps)
            elif s.target_fps is None:
                anchor = None
            if prev is None:
                prev = f
                continue
            if f.pts <= prev.pts:
                log.debug("skipping a frame with non-increasing pts %s", f.pts)
                continue
            cut = False
            if s.interpolating and s.scene_cut:
                t0 = time.perf_counter()
                if detector is None or detector.threshold != s.scene_threshold:
                    detector = SceneCutDetector(s.scene_threshold)
                cut = detector.is_cut(prev.rgb, f.rgb)
                self._time("detect", t0, 1)
                if cut:
                    self._count(cuts=1)
            if not self._emit_pair(prev, f, f.pts, anchor, cut):
                return
            last_span = f.pts - prev.pts
            prev = f

    def _emit_pair(self, f0: Frame, f1: Frame | None, end: Fraction,
                   anchor: tuple[Fraction, Fraction | None] | None, cut: bool = False) -> bool:
        """Output frames for [f0.pts, end): f1 None is the tail after the last frame."""
        s = self._settings
        plan = plan_interval(f0.pts, end, s, anchor[0] if anchor else None)
        made: dict[int, np.ndarray] = {}
        gen = [i for i, (_, t) in enumerate(plan) if t > 0]
        behind = s.passthrough_when_behind and self._behind
        if behind and gen:
            self._count(dropped=len(gen))
            plan = [(f0.pts, Fraction(0))]
            gen = []
        if gen and f1 is not None and not cut:
            ts = [float(plan[i][1]) for i in gen]
            t0 = time.perf_counter()
            frames = self.engines.interpolator()(f0.rgb, f1.rgb, ts)
            self._time("interpolate", t0, len(ts))
            made = dict(zip(gen, frames, strict=True))
        for i, (pts, t) in enumerate(plan):
            if t == 0:
                out = Frame(f0.rgb, pts, f0.index, "source", Fraction(0), f0.epoch)
                self._count(source=1)
            elif i in made:
                out = Frame(made[i], pts, f0.index, "generated", t, f0.epoch)
                self._count(generated=1)
            else:
                near = f0 if f1 is None or t <= Fraction(1, 2) else f1
                out = Frame(near.rgb, pts, f0.index, "repeat", t, f0.epoch)
                self._count(repeated=1)
            if not self._put(1, out):
                return False
        return True

    def _upscale_loop(self) -> None:
        while True:
            item = self._get(1)
            if item is None:
                return
            if isinstance(item, Frame):
                if item.epoch != self._epoch:
                    continue
                scale = self._settings.upscale
                if scale > 1:
                    t0 = time.perf_counter()
                    item = replace(item, rgb=self.engines.upscaler(scale)(item.rgb))
                    self._time("upscale", t0, 1)
            if not self._put(2, item):
                return


def _drain(q: queue.Queue[Any]) -> None:
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return
