"""``m23 play [VIDEO] [options]``: argument parsing, the Qt application, screenshot mode."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

__all__ = ["main", "build_parser", "format_report"]

log = logging.getLogger(__name__)

SAMPLE = Path(__file__).resolve().parent.parent.parent / "assets" / "sample.mp4"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``m23 play``."""
    p = argparse.ArgumentParser(
        prog="m23 play", description="Play a video with live frame generation and upscaling. "
        "With no VIDEO, plays the shipped sample with the shipped models.")
    p.add_argument("video", nargs="?", default=None, help="the video (default: the sample)")
    p.add_argument("--interpolate", type=int, default=1, choices=[1, 2, 4],
                   help="frame generation factor at start (1: off)")
    p.add_argument("--target-fps", default=None, metavar="RATE",
                   help="start in the target frame rate mode (e.g. 60, 59.94, 60000/1001)")
    p.add_argument("--upscale", type=int, default=1, choices=[1, 2, 4],
                   help="upscaling at start (1: off)")
    p.add_argument("--models", default=None, metavar="DIR",
                   help="folder of models (default: the shipped assets/)")
    p.add_argument("--provider", default="auto", choices=["auto", "cpu", "cuda", "tensorrt"])
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per engine")
    p.add_argument("--split", action="store_true", help="start with the split view")
    p.add_argument("--no-osd", action="store_true", help="start without the on-screen display")
    p.add_argument("--no-audio", action="store_true", help="do not play the audio")
    p.add_argument("--seek", type=float, default=0.0, metavar="SECONDS", help="start here")
    p.add_argument("--screenshot", default=None, metavar="OUT.png",
                   help="play --frames frames, save a screenshot of the window, print the "
                   "achieved fps per stage and exit (works with QT_QPA_PLATFORM=offscreen)")
    p.add_argument("--frames", type=int, default=100,
                   help="frames to present before the screenshot")
    p.add_argument("--size", default="960x620", help="window size WxH")
    p.add_argument("--settings", default=None, metavar="FILE.ini",
                   help="keep recent files in this file instead of the user's Qt settings")
    return p


def _check(a: argparse.Namespace) -> tuple[Fraction | None, tuple[int, int]]:
    from app.cli import UserError
    from app.pipeline import PipelineError, parse_rate

    target = None
    if a.target_fps is not None:
        if a.interpolate != 1:
            raise UserError("give --interpolate or --target-fps, not both")
        try:
            target = parse_rate(a.target_fps)
        except PipelineError as exc:
            raise UserError(str(exc)) from None
    if a.frames < 1:
        raise UserError(f"--frames must be at least 1, got {a.frames}")
    if a.threads < 0:
        raise UserError(f"--threads must be >= 0, got {a.threads}")
    try:
        w, h = (int(x) for x in a.size.lower().split("x"))
    except ValueError:
        raise UserError(f"bad --size {a.size!r}; use WxH, e.g. 960x620") from None
    if a.screenshot is not None:
        out = Path(a.screenshot)
        if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            raise UserError(f"--screenshot must end in .png or .jpg, got {out}")
        if not out.parent.is_dir():
            raise UserError(f"folder not found for --screenshot: {out.parent}")
    video = Path(a.video) if a.video is not None else SAMPLE
    if a.screenshot is not None and not video.is_file():
        raise UserError(f"video not found: {video}")
    return target, (w, h)


def format_report(snap: Any, frames: int, seconds: float, paint_ms: float) -> str:
    """The table ``--screenshot`` prints: achieved fps of every stage."""
    rows = [("stage", "ms/frame", "fps")]
    for name, key in (("decode", "decode"), ("scene cut", "detect"),
                      ("interpolate", "interpolate"), ("upscale", "upscale")):
        if key in snap.ms and snap.ms[key] > 0:
            rows.append((name, f"{snap.ms[key]:.2f}", f"{1000.0 / snap.ms[key]:.1f}"))
    if paint_ms > 0:
        rows.append(("paint (GUI)", f"{paint_ms:.2f}", f"{1000.0 / paint_ms:.1f}"))
    rows.append(("shown (clock)", "", f"{frames / seconds:.1f}" if seconds > 0 else "-"))
    w0 = max(len(r[0]) for r in rows)
    lines = [f"{r[0]:<{w0}}  {r[1]:>9}  {r[2]:>8}" for r in rows]
    up = "off" if snap.upscale == 1 else f"{snap.upscale}x"
    head = (f"{snap.size[0]}x{snap.size[1]} at {snap.source_fps:.2f} fps; frame generation "
            f"{snap.interpolation} (nominal {snap.nominal_fps:.2f} fps), upscaling {up}; "
            f"provider {snap.provider}")
    tail = (f"{frames} frames shown in {seconds:.2f} s; generated {snap.generated}, passed "
            f"through {snap.passed}, late dropped {snap.late}, repeated {snap.repeated}")
    return "\n".join([head, *lines, tail])


def main(argv: list[str]) -> int:
    """``m23 play``: returns the exit status (2 for bad arguments or, with --screenshot, an
    unreadable video)."""
    from app.cli import UserError

    a = build_parser().parse_args(argv)
    target, (w, h) = _check(a)
    from PyQt6.QtWidgets import QApplication

    from app.player.window import PlayerOptions, PlayerWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    options = PlayerOptions(
        models_dir=Path(a.models) if a.models else None, provider=a.provider,
        threads=a.threads, factor=a.interpolate, target_fps=target or Fraction(60),
        start_target=target is not None, upscale=a.upscale, split=a.split, osd=not a.no_osd,
        audio=not a.no_audio)
    from PyQt6.QtCore import QSettings

    qs = QSettings(a.settings, QSettings.Format.IniFormat) if a.settings else None
    win = PlayerWindow(options, qs)
    win.resize(w, h)
    win.show()
    video = Path(a.video) if a.video is not None else SAMPLE
    shot = a.screenshot is not None
    opened = win.open(video, paused=shot or a.seek > 0)
    if shot:
        if not opened:
            win.close()
            raise UserError(win.errors[-1] if win.errors else f"cannot play {video}")
        return _screenshot(app, win, Path(a.screenshot), a.frames, a.seek)
    if opened and a.seek > 0:
        win.seek(a.seek)
        win.set_playing(True)
    return int(app.exec())


def _screenshot(app: Any, win: Any, out: Path, frames: int, seek: float) -> int:
    """Apply the settings, play ``frames`` frames, save the window, print the table."""
    from PyQt6.QtCore import QEventLoop, QTimer

    from app.video import temp_name

    session = win.session
    for fut in (win.apply_framegen(), win.apply_upscale()):
        if fut is not None:
            while not fut.done():
                app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
    if seek > 0:
        win.seek(seek)
    start_count = session.clock.stats().presented
    t0 = time.perf_counter()
    win.set_playing(True)
    state: dict[str, float] = {}

    def check() -> None:
        st = session.clock.stats()
        done = st.presented - start_count >= frames
        if done or st.ended or time.perf_counter() - t0 > 300:
            state["seconds"] = time.perf_counter() - t0
            state["frames"] = st.presented - start_count
            state["ended"] = float(st.ended and not done)
            loop.quit()

    loop = QEventLoop()
    timer = QTimer()
    timer.timeout.connect(check)
    timer.start(5)
    loop.exec()
    timer.stop()
    win._tick()  # the OSD with the final numbers, while still playing
    win.view.repaint()
    snap = session.snapshot()
    image = win.grab()
    win.set_playing(False)
    tmp = temp_name(out)
    try:
        if not image.save(str(tmp)):
            from app.cli import UserError

            raise UserError(f"cannot write {out}")
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    if state.get("ended"):
        log.warning("the video ended after %d frames", int(state["frames"]))
    sys.stdout.write(format_report(snap, int(state["frames"]), state["seconds"],
                                   win.view.paint_ms) + "\n")
    sys.stdout.write(f"screenshot: {out}\n")
    win.close()
    return 0
