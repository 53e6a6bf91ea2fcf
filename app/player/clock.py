"""The presentation clock: shows frames at their timestamps, in its own thread.

No Qt here. The clock pulls frames from a source (``read(timeout) -> Frame | None``, e.g.
:meth:`app.pipeline.Pipeline.read`), waits until the media time reaches each frame's pts and
hands it to ``present`` (called in the clock's thread; the player's ``present`` only stores the
frame and wakes the GUI, so a busy GUI thread never delays the schedule).

Media time is the audio position when an audio clock is given and running (the video is slaved
to it), else a wall clock anchored at the first frame after start, seek or resume. A frame that
arrives later than ``late_s`` after its time is dropped (unless nothing was shown for
``max_gap_s``), and the clock reports that processing is behind through ``on_behind(True)``;
after ``recover_s`` of frames on time it reports ``on_behind(False)``. When even that cannot keep
up (a frame later than ``resync_s``), the clock re-anchors on that frame (the video jumps instead
of freezing) and counts a resync.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from app.video import Frame

__all__ = ["FrameSource", "PresentationClock", "ClockStats"]

log = logging.getLogger(__name__)


class FrameSource(Protocol):
    """Where the clock gets frames: the next frame, None at the end, queue.Empty on timeout."""

    def read(self, timeout: float | None = None) -> Frame | None:
        ...


@dataclass
class ClockStats:
    """A snapshot of the clock's counters.

    Attributes:
        presented: frames handed to ``present``.
        late_dropped: frames dropped because they arrived too late.
        resyncs: times the clock re-anchored because processing was far behind.
        fps: frames presented per second over the last second of wall time.
        lateness_ms: lateness of the last presented frame (negative: early), milliseconds.
        behind: whether the clock currently reports processing as behind.
        ended: the source reached its end.
        paused: playback is paused.
        position: pts (seconds) of the last presented frame.
    """

    presented: int = 0
    late_dropped: int = 0
    resyncs: int = 0
    fps: float = 0.0
    lateness_ms: float = 0.0
    behind: bool = False
    ended: bool = False
    paused: bool = False
    position: float = 0.0


class PresentationClock:
    """Shows frames at their timestamps in a daemon thread ("m23-clock").

    Args:
        source: the frames, in presentation order.
        present: called in the clock thread with each frame at its time.
        media_time: optional audio clock, seconds (None while it has no position); when given
            and not None the video follows it.
        on_behind: told True when frames come too late, False when they are on time again.
        on_end: called once when the source ends (per start or seek).
        on_error: called with an exception the source raised (the clock then waits for a seek).
        late_s: a frame later than this is dropped.
        max_gap_s: ... unless nothing was shown for this long.
        recover_s: seconds of on-time frames before reporting that processing caught up.
        resync_s: a frame later than this re-anchors the clock.
    """

    def __init__(self, source: FrameSource, present: Callable[[Frame], None], *,
                 media_time: Callable[[], float | None] | None = None,
                 on_behind: Callable[[bool], None] | None = None,
                 on_end: Callable[[], None] | None = None,
                 on_error: Callable[[BaseException], None] | None = None,
                 late_s: float = 0.05, max_gap_s: float = 0.25, recover_s: float = 1.0,
                 resync_s: float = 1.0) -> None:
        self.source = source
        self.present = present
        self.media_time = media_time
        self.on_behind = on_behind
        self.on_end = on_end
        self.on_error = on_error
        self.late_s, self.max_gap_s = late_s, max_gap_s
        self.recover_s, self.resync_s = recover_s, resync_s
        self._cond = threading.Condition()
        self._gen = 0  # seek generation: frames read before a seek are discarded
        self._paused = False
        self._preview = True  # show the next frame even though paused (at start, after a seek)
        self._stop = False
        self._anchor: tuple[float, float] | None = None  # (wall, pts) of the wall clock
        self._stats = ClockStats()
        self._times: deque[float] = deque(maxlen=512)
        self.log: deque[tuple[float, float, float]] = deque(maxlen=4096)
        """(pts, due wall time, presented wall time) of recent frames (for tests, the OSD)."""
        self._behind_since: float | None = None
        self._on_time_since: float | None = None
        self._last_shown = 0.0
        self._since = time.perf_counter()  # start of the current run of frames (for the fps)
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ control
    def start(self) -> PresentationClock:
        """Start the clock thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="m23-clock", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and wait for it."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=5.0)

    def set_paused(self, paused: bool) -> None:
        """Pause (frames stop, the schedule freezes) or resume (re-anchored at the next frame)."""
        with self._cond:
            if paused != self._paused:
                self._paused = paused
                self._anchor = None
                self._since = time.perf_counter()
                self._cond.notify_all()

    @property
    def paused(self) -> bool:
        """Whether playback is paused."""
        return self._paused

    def flush(self) -> None:
        """Forget the frame in hand and the schedule (call right after seeking the source): the
        next frame is shown at once, even when paused, and anchors the schedule."""
        with self._cond:
            self._gen += 1
            self._anchor = None
            self._preview = True
            self._stats.ended = False
            self._since = time.perf_counter()
            self._cond.notify_all()

    def mark_behind(self) -> None:
        """Report processing as behind now (after a seek: source frames until it refills);
        cleared as usual after ``recover_s`` of frames on time."""
        with self._cond:
            self._on_time_since = None
            self._stats.behind = False
            self._set_behind(True, time.perf_counter())

    def stats(self) -> ClockStats:
        """A copy of the counters, with the fps over the last second."""
        now = time.perf_counter()
        with self._cond:
            s = ClockStats(**vars(self._stats))
            recent = [t for t in self._times if now - t <= 1.0]
            s.paused = self._paused
        window = min(1.0, now - self._since)
        s.fps = len(recent) / window if window > 0.05 and not s.paused else 0.0
        return s

    # ------------------------------------------------------------------ thread
    def _now_media(self, now: float) -> float | None:
        if self.media_time is not None:
            m = self.media_time()
            if m is not None:
                return m
        if self._anchor is None:
            return None
        return self._anchor[1] + (now - self._anchor[0])

    def _set_behind(self, behind: bool, now: float) -> None:
        if behind == self._stats.behind:
            return
        self._stats.behind = behind
        self._behind_since = now if behind else None
        log.debug("processing %s", "behind: passing through" if behind else "caught up")
        if self.on_behind is not None:
            self.on_behind(behind)

    def _wait_for(self, gen: int, frame: Frame) -> str:
        """Wait until the frame is due. Returns "show", "late", "stale" (seek/pause/stop)."""
        pts = float(frame.pts)
        while True:
            with self._cond:
                if self._stop or gen != self._gen:
                    return "stale"
                if self._preview:
                    return "show"
                if self._paused:
                    self._cond.wait(0.05)
                    if self._paused or gen != self._gen:
                        return "stale" if gen != self._gen or self._stop else "hold"
                now = time.perf_counter()
                media = self._now_media(now)
                if media is None:  # the first frame after start/seek/resume anchors the clock
                    self._anchor = (now, pts)
                    return "show"
                remaining = pts - media
                if remaining <= 0:
                    if -remaining > self.resync_s:
                        self._anchor = (now, pts)
                        self._stats.resyncs += 1
                        return "show"
                    if -remaining > self.late_s and now - self._last_shown < self.max_gap_s:
                        return "late"
                    return "show"
                self._cond.wait(min(remaining, 0.02))

    def _run(self) -> None:
        held: tuple[int, Frame] | None = None
        while True:
            with self._cond:
                if self._stop:
                    return
                gen = self._gen
                idle = (self._paused and not self._preview) or self._stats.ended
                if idle:
                    self._cond.wait(0.05)
                    continue
            if held is not None and held[0] == gen:
                frame: Frame | None = held[1]
            else:
                try:
                    frame = self.source.read(timeout=0.05)
                except queue.Empty:
                    continue
                except Exception as exc:  # a failed stage: report, wait for a seek
                    self._finish(gen, exc)
                    continue
            held = None
            if frame is None:
                self._finish(gen, None)
                continue
            verdict = self._wait_for(gen, frame)
            if verdict == "hold":
                held = (gen, frame)
                continue
            if verdict == "stale":
                continue
            now = time.perf_counter()
            if verdict == "late":
                with self._cond:
                    self._stats.late_dropped += 1
                    self._on_time_since = None
                    self._set_behind(True, now)
                continue
            self._show(gen, frame, now)

    def _show(self, gen: int, frame: Frame, now: float) -> None:
        pts = float(frame.pts)
        with self._cond:
            if gen != self._gen:
                return
            media = self._now_media(now)
            lateness = 0.0 if media is None else media - pts
            self._preview = False
            if self._anchor is None and not self._paused:
                self._anchor = (now, pts)
            self._stats.presented += 1
            self._stats.position = pts
            self._stats.lateness_ms = lateness * 1000.0
            self._times.append(now)
            self._last_shown = now
            self.log.append((pts, now - lateness, now))
            if lateness > self.late_s:
                self._on_time_since = None
                self._set_behind(True, now)
            elif self._stats.behind:
                if self._on_time_since is None:
                    self._on_time_since = now
                since = self._behind_since if self._behind_since is not None else now
                if now - self._on_time_since >= self.recover_s and now - since >= self.recover_s:
                    self._set_behind(False, now)
        self.present(frame)

    def _finish(self, gen: int, exc: BaseException | None) -> None:
        with self._cond:
            if gen != self._gen:
                return
            self._stats.ended = True
            self._preview = False
        if exc is not None:
            log.debug("frame source failed: %r", exc)
            if self.on_error is not None:
                self.on_error(exc)
        elif self.on_end is not None:
            self.on_end()

