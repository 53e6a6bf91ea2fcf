"""The file's audio through QtMultimedia, as the clock the video follows.

:func:`open_audio` returns an :class:`AudioClock` or, where audio cannot play (QtMultimedia does
not load, no audio output device, no audio stream), None and a one-line reason the player shows
once. :meth:`AudioClock.media_time` is safe to call from the presentation clock's thread: it
reads the last position QtMultimedia reported (a Qt signal, GUI thread) and extrapolates it
with the wall clock.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["AudioClock", "open_audio"]

log = logging.getLogger(__name__)


class AudioClock:
    """Plays a file's audio with ``QMediaPlayer`` + ``QAudioOutput`` (create in the GUI thread).

    Args:
        path: the media file.
        start: pts of the video's first frame (seconds), added to the audio position.
    """

    def __init__(self, path: str | Path, start: float = 0.0) -> None:
        from PyQt6.QtCore import QUrl
        from PyQt6.QtMultimedia import QAudioOutput, QMediaPlayer

        self.start = start
        self._lock = threading.Lock()
        self._pos: tuple[float, float] | None = None  # (seconds, perf_counter when reported)
        self._playing = False
        self.output = QAudioOutput()
        self.player = QMediaPlayer()
        self.player.setAudioOutput(self.output)
        self.player.positionChanged.connect(self._on_position)
        self.player.setSource(QUrl.fromLocalFile(str(Path(path).resolve())))

    def _on_position(self, ms: int) -> None:
        with self._lock:
            self._pos = (ms / 1000.0, time.perf_counter())

    def media_time(self) -> float | None:
        """Seconds on the video's timeline, or None while the audio is not playing."""
        with self._lock:
            if not self._playing or self._pos is None:
                return None
            pos, stamp = self._pos
        return self.start + pos + min(time.perf_counter() - stamp, 0.5)

    def play(self) -> None:
        """Start or resume (GUI thread)."""
        with self._lock:
            self._playing = True
            self._pos = None
        self.player.play()

    def pause(self) -> None:
        """Pause (GUI thread)."""
        with self._lock:
            self._playing = False
        self.player.pause()

    def seek(self, seconds: float) -> None:
        """Jump to ``seconds`` on the video's timeline (GUI thread)."""
        with self._lock:
            self._pos = None
        self.player.setPosition(max(0, int((seconds - self.start) * 1000)))

    def close(self) -> None:
        """Stop playing."""
        with self._lock:
            self._playing = False
        self.player.stop()


def open_audio(path: str | Path, has_audio: bool, start: float = 0.0,
               enabled: bool = True) -> tuple[AudioClock | None, str | None]:
    """An audio clock for ``path``, or None and why (one line for the user; None: nothing to
    say, e.g. a file without audio)."""
    if not has_audio:
        return None, None
    if not enabled:
        return None, "audio off: playing silently"
    try:
        from PyQt6.QtMultimedia import QMediaDevices
    except ImportError as exc:
        return None, f"no audio: QtMultimedia does not load here ({exc}); playing silently"
    outputs: Any = QMediaDevices.audioOutputs()
    if not outputs:
        return None, "no audio output device: playing silently"
    try:
        return AudioClock(path, start), None
    except (ImportError, RuntimeError) as exc:
        return None, f"no audio ({exc}); playing silently"
