"""The player's window (PyQt6): video view, controls, menus, hotkeys, overlays.

The window never waits on the pipeline: the presentation clock (its own thread) hands each frame
to :meth:`PlayerWindow._present`, which stores it and asks the GUI thread to repaint (at most one
repaint request pending, so a busy GUI thread coalesces frames instead of queueing them).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QRectF, QSettings, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import (
    QAction,
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QFont,
    QImage,
    QKeySequence,
    QPainter,
    QPaintEvent,
)
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.player.audio import AudioClock, open_audio
from app.player.session import Playback, Snapshot
from app.video import Frame, VideoError

__all__ = ["PlayerWindow", "VideoView", "PlayerOptions", "HOTKEYS", "FRAMEGEN_CHOICES",
           "UPSCALE_CHOICES", "ORGANIZATION", "APPLICATION"]

log = logging.getLogger(__name__)

ORGANIZATION = "m23-spectrum"
APPLICATION = "m23 play"
MAX_RECENT = 10
SEEK_STEP = 5.0

HOTKEYS: tuple[tuple[str, str], ...] = (
    ("Space", "play / pause"),
    ("Left / Right", f"seek -{SEEK_STEP:g} s / +{SEEK_STEP:g} s"),
    ("Down / Up", "seek -30 s / +30 s"),
    ("G", "frame generation: off, 2x, 4x, target fps"),
    ("U", "upscaling: off, 2x, 4x"),
    ("S", "split view: source | processed"),
    ("I", "on-screen display"),
    ("F", "fullscreen (Esc leaves it)"),
    ("H or F1", "this help"),
    ("Ctrl+O", "open a video (or drop a file on the window)"),
    ("Ctrl+Q", "quit"),
)
"""(key, what it does), as the help overlay shows them."""

FRAMEGEN_CHOICES: tuple[tuple[str, int, Fraction | None], ...] = (
    ("Frame gen: off", 1, None), ("Frame gen: 2x", 2, None), ("Frame gen: 4x", 4, None))
"""(label, factor, target fps); the target-fps entry is added from the options."""

UPSCALE_CHOICES: tuple[tuple[str, int], ...] = (
    ("Upscale: off", 1), ("Upscale: 2x", 2), ("Upscale: 4x", 4))


@dataclass
class PlayerOptions:
    """How the player runs (from the command line).

    Attributes:
        models_dir: folder of models (None: the shipped ``assets/``).
        provider: ONNX Runtime provider ("auto", "cpu", "cuda", "tensorrt").
        threads: ONNX Runtime intra-op threads per engine.
        factor: initial frame generation factor (1: off).
        target_fps: the target frame rate of the target-fps mode (also initial when
            ``start_target`` is set).
        start_target: start in the target-fps mode.
        upscale: initial upscaling factor (1: off).
        split: start with the split view.
        osd: start with the on-screen display shown.
        audio: try to play the audio.
        queue_size: capacity of each pipeline queue.
    """

    models_dir: Path | None = None
    provider: str = "auto"
    threads: int = 1
    factor: int = 1
    target_fps: Fraction = Fraction(60)
    start_target: bool = False
    upscale: int = 1
    split: bool = False
    osd: bool = True
    audio: bool = True
    queue_size: int = 4


def _qimage(rgb: np.ndarray) -> QImage:
    """A QImage sharing an (H, W, 3) uint8 RGB array (keep the array alive while drawing)."""
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, rgb.strides[0],  # type: ignore[call-overload]
                  QImage.Format.Format_RGB888)


class VideoView(QWidget):
    """Draws the current frame (aspect kept, letterboxed), the split view and the overlays."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(320, 180)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._lock = threading.Lock()
        self._frame: np.ndarray | None = None
        self._source: np.ndarray | None = None
        self.split = False
        self.osd_text = ""
        self.osd_visible = True
        self.help_visible = False
        self.messages: list[tuple[float, str]] = []
        self.paint_ms = 0.0
        self.painted = 0

    def set_frame(self, frame: np.ndarray | None, source: np.ndarray | None = None) -> None:
        """The picture to show ((H, W, 3) uint8 RGB) and its source (any size); any thread."""
        with self._lock:
            self._frame, self._source = frame, source

    def current(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The frame and source shown (or about to be)."""
        with self._lock:
            return self._frame, self._source

    def _target(self, w: int, h: int) -> QRectF:
        s = min(self.width() / w, self.height() / h)
        tw, th = w * s, h * s
        return QRectF((self.width() - tw) / 2, (self.height() - th) / 2, tw, th)

    def paintEvent(self, event: QPaintEvent | None) -> None:  # noqa: N802 (Qt's name)
        t0 = time.perf_counter()
        frame, source = self.current()
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(0, 0, 0))
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        if frame is not None:
            target = self._target(frame.shape[1], frame.shape[0])
            p.drawImage(target, _qimage(frame))
            if self.split and source is not None:
                half = QRectF(target.left(), target.top(), target.width() / 2, target.height())
                p.save()
                p.setClipRect(half)
                p.drawImage(target, _qimage(source))
                p.restore()
                p.setPen(QColor(255, 255, 255))
                x = target.left() + target.width() / 2
                p.drawLine(int(x), int(target.top()), int(x), int(target.bottom()))
                self._label(p, target.left() + 8, target.bottom() - 28, "source")
                self._label(p, x + 8, target.bottom() - 28, "processed")
        if self.osd_visible and self.osd_text:
            self._box(p, 10, 10, self.osd_text)
        self._messages(p)
        if self.help_visible:
            text = "\n".join(f"{k:<14} {v}" for k, v in HOTKEYS)
            self._box(p, None, None, "Hotkeys\n\n" + text)
        p.end()
        self.painted += 1
        ms = (time.perf_counter() - t0) * 1000.0
        self.paint_ms = ms if self.painted == 1 else 0.9 * self.paint_ms + 0.1 * ms

    def _font(self) -> QFont:
        f = QFont("monospace")
        f.setStyleHint(QFont.StyleHint.Monospace)
        f.setPointSize(9)
        return f

    def _label(self, p: QPainter, x: float, y: float, text: str) -> None:
        p.setFont(self._font())
        fm = p.fontMetrics()
        r = QRectF(x, y, fm.horizontalAdvance(text) + 10, fm.height() + 6)
        p.fillRect(r, QColor(0, 0, 0, 150))
        p.setPen(QColor(255, 255, 255))
        p.drawText(r, Qt.AlignmentFlag.AlignCenter, text)

    def _box(self, p: QPainter, x: float | None, y: float | None, text: str,
             color: QColor | None = None) -> None:
        p.setFont(self._font())
        fm = p.fontMetrics()
        lines = text.split("\n")
        w = max(fm.horizontalAdvance(line) for line in lines) + 20
        h = fm.height() * len(lines) + 16
        x = (self.width() - w) / 2 if x is None else x
        y = (self.height() - h) / 2 if y is None else y
        p.fillRect(QRectF(x, y, w, h), color or QColor(0, 0, 0, 170))
        p.setPen(QColor(255, 255, 255))
        for i, line in enumerate(lines):
            p.drawText(int(x + 10), int(y + 8 + fm.ascent() + i * fm.height()), line)

    def _messages(self, p: QPainter) -> None:
        now = time.monotonic()
        self.messages = [(t, m) for t, m in self.messages if now - t < 10.0][-3:]
        if not self.messages:
            return
        p.setFont(self._font())
        fm = p.fontMetrics()
        width = max(50, self.width() - 40)
        text = "\n".join(fm.elidedText(m, Qt.TextElideMode.ElideRight, width)
                         for _, m in self.messages)
        h = fm.height() * len(self.messages) + 16
        self._box(p, 10, self.height() - h - 44, text, QColor(150, 0, 0, 200))


class PlayerWindow(QMainWindow):
    """The player: open a video, play it through the pipeline, toggle processing live.

    Args:
        options: how to run (models, provider, initial settings).
        settings: where recent files are kept (default: QSettings of ORGANIZATION/APPLICATION).
    """

    frame_ready = pyqtSignal()
    message = pyqtSignal(str)
    ended = pyqtSignal()

    def __init__(self, options: PlayerOptions | None = None,
                 settings: QSettings | None = None) -> None:
        super().__init__()
        self.options = options or PlayerOptions()
        self.qsettings = settings if settings is not None else QSettings(ORGANIZATION,
                                                                         APPLICATION)
        self.session: Playback | None = None
        self.audio: AudioClock | None = None
        self.errors: list[str] = []
        self._said: set[str] = set()
        self._pending = threading.Event()
        self._seeking = False
        self._watched: list[tuple[Future[object], QComboBox, Callable[[], int]]] = []
        self.setWindowTitle("m23 play")
        self.setAcceptDrops(True)
        self.resize(960, 620)
        self.view = VideoView()
        self.view.split = self.options.split
        self.view.osd_visible = self.options.osd
        self._build_controls()
        self._build_menus()
        self.frame_ready.connect(self._on_frame)
        self.message.connect(self.show_message)
        self.ended.connect(self._on_ended)
        self.timer = QTimer(self)
        self.timer.setInterval(100)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    # ------------------------------------------------------------------ building
    def _build_controls(self) -> None:
        self.play_button = QPushButton("Play")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.time_label = QLabel("0:00 / 0:00")
        self.framegen_box = QComboBox()
        self._framegen = list(FRAMEGEN_CHOICES) + [
            (f"Frame gen: {float(self.options.target_fps):g} fps", 1, self.options.target_fps)]
        for label, _, _ in self._framegen:
            self.framegen_box.addItem(label)
        self.upscale_box = QComboBox()
        for label, _ in UPSCALE_CHOICES:
            self.upscale_box.addItem(label)
        self.split_box = QCheckBox("Split")
        self.osd_box = QCheckBox("OSD")
        for w in (self.play_button, self.slider, self.framegen_box, self.upscale_box,
                  self.split_box, self.osd_box):
            w.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys go to the window's hotkeys
        self.split_box.setChecked(self.view.split)
        self.osd_box.setChecked(self.view.osd_visible)
        if self.options.start_target:
            self.framegen_box.setCurrentIndex(len(self._framegen) - 1)
        else:
            idx = [c[1] for c in FRAMEGEN_CHOICES].index(self.options.factor) \
                if self.options.factor in (1, 2, 4) else 0
            self.framegen_box.setCurrentIndex(idx)
        self.upscale_box.setCurrentIndex([c[1] for c in UPSCALE_CHOICES].index(
            self.options.upscale) if self.options.upscale in (1, 2, 4) else 0)
        self.play_button.clicked.connect(self.toggle_play)
        self.slider.sliderPressed.connect(self._slider_pressed)
        self.slider.sliderReleased.connect(self._slider_released)
        self.slider.actionTriggered.connect(self._slider_action)
        self.framegen_box.currentIndexChanged.connect(self._framegen_changed)
        self.upscale_box.currentIndexChanged.connect(self._upscale_changed)
        self.split_box.toggled.connect(self.set_split)
        self.osd_box.toggled.connect(self.set_osd)
        bar = QHBoxLayout()
        bar.addWidget(self.play_button)
        bar.addWidget(self.slider, 1)
        bar.addWidget(self.time_label)
        bar.addWidget(self.framegen_box)
        bar.addWidget(self.upscale_box)
        bar.addWidget(self.split_box)
        bar.addWidget(self.osd_box)
        self.controls = QWidget()
        self.controls.setLayout(bar)
        box = QVBoxLayout()
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.view, 1)
        box.addWidget(self.controls)
        central = QWidget()
        central.setLayout(box)
        self.setCentralWidget(central)

    def _action(self, menu: QMenu, text: str, keys: list[str], slot: Callable[[], object],
                checkable: bool = False) -> QAction:
        act = QAction(text, self)
        act.setShortcuts([QKeySequence(k) for k in keys])
        act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        act.setCheckable(checkable)
        act.triggered.connect(slot)
        menu.addAction(act)
        self.addAction(act)  # shortcuts work while the menu bar is hidden (fullscreen)
        return act

    def _build_menus(self) -> None:
        bar = self.menuBar()
        assert bar is not None
        file_menu = bar.addMenu("&File")
        assert file_menu is not None
        self._action(file_menu, "&Open...", ["Ctrl+O"], self.open_dialog)
        recent = file_menu.addMenu("Open &Recent")
        assert recent is not None
        self.recent_menu = recent
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", ["Ctrl+Q"], self.close)
        play = bar.addMenu("&Playback")
        assert play is not None
        self._action(play, "Play / pause", ["Space"], self.toggle_play)
        self._action(play, f"Forward {SEEK_STEP:g} s", ["Right"],
                     lambda: self.seek_relative(SEEK_STEP))
        self._action(play, f"Back {SEEK_STEP:g} s", ["Left"],
                     lambda: self.seek_relative(-SEEK_STEP))
        self._action(play, "Forward 30 s", ["Up"], lambda: self.seek_relative(30.0))
        self._action(play, "Back 30 s", ["Down"], lambda: self.seek_relative(-30.0))
        self._action(play, "Next frame generation mode", ["G"], self.cycle_framegen)
        self._action(play, "Next upscaling mode", ["U"], self.cycle_upscale)
        view = bar.addMenu("&View")
        assert view is not None
        self._action(view, "Split view", ["S"], lambda: self.set_split(not self.view.split))
        self._action(view, "On-screen display", ["I"],
                     lambda: self.set_osd(not self.view.osd_visible))
        self._action(view, "Fullscreen", ["F"], self.toggle_fullscreen)
        self._action(view, "Leave fullscreen", ["Esc"], self.leave_fullscreen)
        self._action(view, "Hotkeys", ["H", "F1"], self.toggle_help)
        self._rebuild_recent()

    # ------------------------------------------------------------------ recent files
    def recent_files(self) -> list[str]:
        """Recently opened files, newest first."""
        value = self.qsettings.value("recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def _remember(self, path: Path) -> None:
        entry = str(path.resolve())
        items = [entry] + [p for p in self.recent_files() if p != entry]
        self.qsettings.setValue("recent", items[:MAX_RECENT])
        self.qsettings.sync()
        self._rebuild_recent()

    def _rebuild_recent(self) -> None:
        self.recent_menu.clear()
        items = self.recent_files()
        for p in items:
            act = self.recent_menu.addAction(p)
            assert act is not None
            act.triggered.connect(lambda _=False, p=p: self.open(p))
        self.recent_menu.setEnabled(bool(items))

    # ------------------------------------------------------------------ opening
    def open_dialog(self) -> None:
        """Ask for a file and open it."""
        path, _ = QFileDialog.getOpenFileName(
            self, "Open video", "", "Videos (*.mp4 *.mkv *.mov *.avi *.webm *.m4v *.ts);;"
            "All files (*)")
        if path:
            self.open(path)

    def dragEnterEvent(self, event: QDragEnterEvent | None) -> None:  # noqa: N802
        if event is not None and event.mimeData() is not None \
                and event.mimeData().hasUrls():  # type: ignore[union-attr]
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent | None) -> None:  # noqa: N802
        if event is None or event.mimeData() is None:
            return
        urls = [u for u in event.mimeData().urls() if u.isLocalFile()]  # type: ignore[union-attr]
        if urls:
            event.acceptProposedAction()
            self.open(urls[0].toLocalFile())

    def open(self, path: str | Path, paused: bool = False) -> bool:
        """Play ``path`` (replacing what plays). An unreadable file is reported in the window
        and what played before keeps playing. Returns whether it opened."""
        p = Path(path)
        try:
            session = Playback(p, self._present, self.message.emit,
                               models_dir=self.options.models_dir,
                               provider=self.options.provider, threads=self.options.threads,
                               on_end=self.ended.emit, queue_size=self.options.queue_size)
        except (VideoError, OSError) as exc:
            self.show_message(str(exc))
            return False
        self.close_session()
        has_audio = any(kind == "audio" for _, kind, _ in session.info.other_streams)
        self.audio, why = open_audio(p, has_audio, float(session.info.start),
                                     self.options.audio)
        if why is not None:
            self.say_once(why)
        if self.audio is not None:
            session.clock.media_time = self.audio.media_time
        self.session = session
        self.view.set_frame(None)
        dur = session.info.duration
        self.slider.setRange(0, int(float(dur) * 1000) if dur is not None else 0)
        self.setWindowTitle(f"{p.name} - m23 play")
        self._remember(p)
        self.apply_framegen()
        self.apply_upscale()
        session.start(paused=paused)
        if self.audio is not None and not paused:
            self.audio.play()
        self._update_play_button()
        return True

    def close_session(self) -> None:
        """Stop what plays."""
        if self.session is not None:
            self.session.close()
            self.session = None
        if self.audio is not None:
            self.audio.close()
            self.audio = None

    def closeEvent(self, event: object) -> None:  # noqa: N802
        self.timer.stop()
        self.close_session()
        super().closeEvent(event)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ messages
    def show_message(self, text: str) -> None:
        """Show a one-line message (an error) on the video for a few seconds (GUI thread)."""
        log.warning("%s", text)
        self.errors.append(text)
        self.view.messages.append((time.monotonic(), text))
        self.statusBar().showMessage(text, 10000)  # type: ignore[union-attr]
        self.view.update()

    def say_once(self, text: str) -> None:
        """:meth:`show_message`, but each text only once per window."""
        if text not in self._said:
            self._said.add(text)
            self.show_message(text)

    # ------------------------------------------------------------------ presenting
    def _present(self, frame: Frame) -> None:
        """Clock thread: store the frame and wake the GUI (at most one wake-up pending)."""
        session = self.session
        source = session.source_of(frame) if session is not None and self.view.split else None
        self.view.set_frame(frame.rgb, source)
        if not self._pending.is_set():
            self._pending.set()
            self.frame_ready.emit()

    def _on_frame(self) -> None:
        self._pending.clear()
        self.view.repaint()

    def _on_ended(self) -> None:
        self._update_play_button()

    # ------------------------------------------------------------------ controls
    @property
    def playing(self) -> bool:
        """Whether a video plays (not paused, not at its end)."""
        s = self.session
        return s is not None and not s.clock.paused and not s.clock.stats().ended

    def toggle_play(self) -> None:
        """Play or pause; at the end, play from the start."""
        s = self.session
        if s is None:
            return
        st = s.clock.stats()
        if st.ended:
            self.seek(0.0)
            s.set_paused(False)
        else:
            s.set_paused(not st.paused)
        if self.audio is not None:
            self.audio.pause() if s.clock.paused else self.audio.play()
        self._update_play_button()

    def set_playing(self, playing: bool) -> None:
        """Resume (True) or pause (False) the video and its audio."""
        s = self.session
        if s is None:
            return
        s.set_paused(not playing)
        if self.audio is not None:
            self.audio.play() if playing else self.audio.pause()
        self._update_play_button()

    def _update_play_button(self) -> None:
        self.play_button.setText("Pause" if self.playing else "Play")

    def position(self) -> float:
        """Seconds of the frame shown last."""
        return self.session.clock.stats().position if self.session is not None else 0.0

    def seek(self, seconds: float) -> None:
        """Show the frame at ``seconds`` (the first at or after it) and continue from there."""
        if self.session is None:
            return
        self.session.seek(seconds)
        if self.audio is not None:
            self.audio.seek(seconds)
        self._update_play_button()

    def seek_relative(self, delta: float) -> None:
        """Seek ``delta`` seconds from the position shown."""
        self.seek(max(0.0, self.position() + delta))

    def _slider_pressed(self) -> None:
        self._seeking = True

    def _slider_released(self) -> None:
        self._seeking = False
        self.seek(self.slider.value() / 1000.0)

    def _slider_action(self, action: int) -> None:
        if not self._seeking:  # page steps and clicks on the groove
            QTimer.singleShot(0, lambda: self.seek(self.slider.sliderPosition() / 1000.0))

    def set_split(self, on: bool) -> None:
        """Split view on or off."""
        self.view.split = bool(on)
        if self.split_box.isChecked() != self.view.split:
            self.split_box.setChecked(self.view.split)
        self.view.update()

    def set_osd(self, on: bool) -> None:
        """On-screen display on or off."""
        self.view.osd_visible = bool(on)
        if self.osd_box.isChecked() != self.view.osd_visible:
            self.osd_box.setChecked(self.view.osd_visible)
        self._tick()

    def toggle_help(self) -> None:
        """Show or hide the hotkeys."""
        self.view.help_visible = not self.view.help_visible
        self.view.update()

    def toggle_fullscreen(self) -> None:
        """Fullscreen on or off (menus and controls hidden in fullscreen)."""
        if self.isFullScreen():
            self.leave_fullscreen()
        else:
            self.menuBar().hide()  # type: ignore[union-attr]
            self.controls.hide()
            self.statusBar().hide()  # type: ignore[union-attr]
            self.showFullScreen()

    def leave_fullscreen(self) -> None:
        """Back to a normal window."""
        if self.isFullScreen():
            self.showNormal()
        self.menuBar().show()  # type: ignore[union-attr]
        self.controls.show()
        self.statusBar().show()  # type: ignore[union-attr]

    def cycle_framegen(self) -> None:
        """Next frame generation mode (off, 2x, 4x, target fps)."""
        self.framegen_box.setCurrentIndex((self.framegen_box.currentIndex() + 1)
                                          % self.framegen_box.count())

    def cycle_upscale(self) -> None:
        """Next upscaling mode (off, 2x, 4x)."""
        self.upscale_box.setCurrentIndex((self.upscale_box.currentIndex() + 1)
                                         % self.upscale_box.count())

    def set_framegen(self, factor: int = 1, target: bool = False) -> None:
        """Select frame generation: ``factor`` 1/2/4, or the target-fps mode."""
        idx = len(self._framegen) - 1 if target else [c[1] for c in FRAMEGEN_CHOICES].index(
            factor)
        if idx == self.framegen_box.currentIndex():
            self.apply_framegen()
        self.framegen_box.setCurrentIndex(idx)

    def set_upscale(self, scale: int) -> None:
        """Select upscaling 1 (off), 2 or 4."""
        idx = [c[1] for c in UPSCALE_CHOICES].index(scale)
        if idx == self.upscale_box.currentIndex():
            self.apply_upscale()
        self.upscale_box.setCurrentIndex(idx)

    def _framegen_changed(self, _: int) -> None:
        self.apply_framegen()

    def _upscale_changed(self, _: int) -> None:
        self.apply_upscale()

    def apply_framegen(self) -> Future[object] | None:
        """Hand the selected frame generation mode to the pipeline (models load in the
        background); returns the future of the change, or None without a video."""
        if self.session is None:
            return None
        _, factor, target = self._framegen[self.framegen_box.currentIndex()]
        fut = self.session.request(factor=factor, target_fps=target)
        self._watch(fut, self.framegen_box, self._framegen_index)
        return fut

    def apply_upscale(self) -> Future[object] | None:
        """Hand the selected upscaling factor to the pipeline; returns the future."""
        if self.session is None:
            return None
        fut = self.session.request(upscale=UPSCALE_CHOICES[self.upscale_box.currentIndex()][1])
        self._watch(fut, self.upscale_box, self._upscale_index)
        return fut

    def _framegen_index(self) -> int:
        s = self.session.pipeline.settings if self.session is not None else None
        if s is None:
            return 0
        if s.target_fps is not None:
            return len(self._framegen) - 1
        return [c[1] for c in FRAMEGEN_CHOICES].index(s.factor) if s.factor in (1, 2, 4) else 0

    def _upscale_index(self) -> int:
        s = self.session.pipeline.settings if self.session is not None else None
        return 0 if s is None else [c[1] for c in UPSCALE_CHOICES].index(s.upscale)

    def _watch(self, fut: Future[object], box: QComboBox, index: Callable[[], int]) -> None:
        """When a change did not apply (model missing), put the box back (GUI thread)."""
        self._watched.append((fut, box, index))

    # ------------------------------------------------------------------ periodic
    def _tick(self) -> None:
        still = []
        for fut, box, index in self._watched:
            if fut.done():
                want = index()
                if box.currentIndex() != want:
                    box.blockSignals(True)
                    box.setCurrentIndex(want)
                    box.blockSignals(False)
            else:
                still.append((fut, box, index))
        self._watched = still
        s = self.session
        if s is None:
            self.view.osd_text = "no video: open one with Ctrl+O or drop it here"
            self.view.update()
            return
        snap = s.snapshot()
        self.view.osd_text = format_osd(snap, self.view.paint_ms, self.audio is not None)
        pos = snap.clock.position - float(s.info.start)
        if not self._seeking:
            self.slider.blockSignals(True)
            self.slider.setValue(int(pos * 1000))
            self.slider.blockSignals(False)
        dur = float(s.info.duration) if s.info.duration is not None else 0.0
        self.time_label.setText(f"{_clock(pos)} / {_clock(dur)}")
        self._update_play_button()
        self.view.update()


def _clock(seconds: float) -> str:
    s = max(0, int(seconds))
    if s >= 3600:
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


def format_osd(s: Snapshot, paint_ms: float, audio: bool) -> str:
    """The on-screen display's text."""
    w, h = s.size
    ms = s.ms
    stages = "  ".join(f"{name} {ms[key]:.1f}" for name, key in (
        ("decode", "decode"), ("cut", "detect"), ("interp", "interpolate"),
        ("upscale", "upscale")) if key in ms)
    q = s.queues
    lines = [
        f"source {s.source_fps:.2f} fps {w}x{h}   shown {s.shown_fps:.1f} fps "
        f"(nominal {s.nominal_fps:.2f})",
        f"frame gen {s.interpolation}   upscale {'off' if s.upscale == 1 else f'{s.upscale}x'}"
        f"   provider {s.provider}",
        f"ms/frame: {stages or '-'}  paint {paint_ms:.1f}",
        f"queues {q.get('decoded', 0)}/{q.get('interpolated', 0)}/{q.get('output', 0)}   "
        f"generated {s.generated}  passed through {s.passed}  late dropped {s.late}",
    ]
    if s.behind:
        lines.append("BEHIND: passing source frames through")
    if not audio:
        lines.append("audio: silent")
    return "\n".join(lines)
