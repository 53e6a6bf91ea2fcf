"""``m23 render INPUT OUTPUT``: frame generation and/or upscaling of a video file.

Decoding, scene-cut detection, interpolation and upscaling run in the threads of
:class:`app.pipeline.Pipeline`; this module encodes in the main thread (:class:`app.video.Encoder`,
audio and subtitles stream-copied), shows a progress bar, and makes sure that OUTPUT appears only
complete: the file is written under a temporary name and renamed at the end; any error or Ctrl-C
removes it. No torch is imported on this path.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

from app.pipeline import (
    Engines,
    Pipeline,
    PipelineError,
    Settings,
    output_rate,
    output_time_base,
    parse_rate,
)
from app.video import Decoder, EncodeOptions, Encoder, VideoError, check_output

__all__ = ["main", "build_parser", "resolve_engines", "render"]

log = logging.getLogger(__name__)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``m23: error: ...``, exit 2)."""

    def error(self, message: str) -> NoReturn:
        raise PipelineError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    """The options of ``m23 render``."""
    p = _Parser(prog="m23 render", description=(
        "Interpolate (frame generation) and/or upscale a video file. Audio, subtitle and other "
        "streams are copied untouched; OUTPUT appears only when complete."))
    p.add_argument("input", metavar="INPUT")
    p.add_argument("output", metavar="OUTPUT", help="the container follows the extension")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--interpolate", type=int, default=None, metavar="N",
                   help="N output frames per source frame (2, 3, 4, ...)")
    g.add_argument("--fps", default=None, metavar="RATE",
                   help="output frame rate, e.g. 60 or 60000/1001")
    p.add_argument("--upscale", type=int, default=1, choices=[1, 2, 4],
                   help="super-resolution factor (1: off)")
    p.add_argument("--interp-model", default=None, metavar="PATH",
                   help="interpolation model (.onnx with its .json sidecar), or 'dis' for the "
                   "classical DIS ultrafast baseline; default: the shipped model")
    p.add_argument("--sr-model", default=None, metavar="PATH",
                   help="super-resolution model for --upscale (.onnx), or 'bicubic'; default: "
                   "the shipped model")
    p.add_argument("--models", default=None, metavar="DIR",
                   help="folder with the models (instead of the shipped assets/)")
    p.add_argument("--provider", default="auto", choices=["auto", "cpu", "cuda", "tensorrt"],
                   help="ONNX Runtime execution provider")
    p.add_argument("--threads", type=int, default=1,
                   help="ONNX Runtime threads per engine (0: its default)")
    p.add_argument("--scene-threshold", type=float, default=Settings.scene_threshold,
                   metavar="T", help="scene cut when the thumbnails differ by more than T "
                   "(mean absolute difference, 0..1)")
    p.add_argument("--no-scene-detect", action="store_true",
                   help="interpolate across scene cuts too")
    p.add_argument("--codec", default="libx264", help="video encoder (FFmpeg name)")
    p.add_argument("--crf", type=float, default=18, help="quality (lower is better)")
    p.add_argument("--preset", default="veryfast", help="encoder speed preset (x264/x265)")
    p.add_argument("--pix-fmt", default="yuv420p", help="output pixel format")
    p.add_argument("--drop-audio", action="store_true",
                   help="leave out audio/subtitle/data streams the output container cannot hold")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    p.add_argument("--queue", type=int, default=4, help="frames queued between stages")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _find(kind: str, scale: int | None, explicit: str | None, models: str | None) -> Path:
    from app.discovery import find_model

    return find_model(kind, scale, explicit if explicit is not None else models)


def resolve_engines(settings: Settings, interp_model: str | None = None,
                    sr_model: str | None = None, models: str | None = None,
                    provider: str = "auto", threads: int = 1) -> Engines:
    """Engines for ``settings``, created now so that a missing or damaged model is reported
    before any output is written.

    Raises:
        EngineError: a model that is missing, damaged or of the wrong kind or scale.
    """
    make_interp: Any = None
    make_up: Any = None
    if settings.interpolating:
        if interp_model == "dis":
            from app.pipeline import DisInterpolator

            make_interp = DisInterpolator
        else:
            from app.engines import OnnxInterpolator

            ipath = _find("interp", None, interp_model, models)
            make_interp = partial(OnnxInterpolator, ipath, provider=provider, threads=threads)
    if settings.upscale > 1:
        if sr_model == "bicubic":
            from app.pipeline import BicubicUpscaler

            make_up = BicubicUpscaler
        else:
            spath = _find("sr", settings.upscale, sr_model, models)
            make_up = partial(_onnx_upscaler, spath, provider, threads)
    engines = Engines(make_interp, make_up)
    if settings.interpolating:
        engines.interpolator()
    if settings.upscale > 1:
        engines.upscaler(settings.upscale)
    return engines


def _onnx_upscaler(path: Path, provider: str, threads: int, scale: int) -> Any:
    from app.upscale import OnnxUpscaler

    return OnnxUpscaler(path, provider=provider, threads=threads, scale=scale)


def render(
    input_path: str | Path,
    output_path: str | Path,
    settings: Settings,
    engines: Engines,
    options: EncodeOptions | None = None,
    queue_size: int = 4,
    progress: bool = True,
) -> dict[str, Any]:
    """Render ``input_path`` into ``output_path`` through the pipeline.

    Returns:
        ``{"frames", "source_frames", "generated", "repeated", "cuts", "seconds", "fps",
        "width", "height", "rate"}`` (``fps``: output frames per second of wall time).

    Raises:
        VideoError, PipelineError, EngineError: bad input or output; nothing is left at
        ``output_path`` (nor a temporary file), also on KeyboardInterrupt.
    """
    out = Path(output_path)
    options = options or EncodeOptions()
    check_output(out, input_path, options.overwrite)
    decoder = Decoder(input_path, queue_size=queue_size)
    info = decoder.info
    rate = output_rate(info.fps, settings)
    tb = output_time_base(info.time_base, settings)
    w, h = info.width * settings.upscale, info.height * settings.upscale
    expected = _expected_frames(info.frames, info.fps, info.duration, rate, settings)
    t0 = time.perf_counter()
    bar = None
    with Encoder(out, w, h, tb, rate, template=input_path, options=options) as enc:
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=expected or None, unit="frame", desc="render", file=sys.stderr,
                       dynamic_ncols=True)
        try:
            with Pipeline(decoder, engines, settings, queue_size=queue_size) as pipe:
                for frame in pipe:
                    enc.write(frame)
                    if bar is not None:
                        bar.update(1)
                stats = pipe.stats()
            enc.close()
        finally:
            if bar is not None:
                bar.close()
    seconds = time.perf_counter() - t0
    return {"frames": enc.frames, "source_frames": stats.source, "generated": stats.generated,
            "repeated": stats.repeated, "cuts": stats.cuts, "seconds": seconds,
            "fps": enc.frames / seconds if seconds > 0 else 0.0, "width": enc.width,
            "height": enc.height, "rate": str(rate)}


def _expected_frames(frames: int, fps: Fraction, duration: Fraction | None, rate: Fraction,
                     settings: Settings) -> int:
    """The number of output frames to expect, for the progress bar (0: unknown)."""
    if settings.target_fps is not None:
        d = duration if duration else (Fraction(frames) / fps if frames else None)
        return math_ceil(d * rate) if d else 0
    return frames * settings.factor


def math_ceil(x: Fraction) -> int:
    """Ceiling of a fraction."""
    return -(-x.numerator // x.denominator)


def main(argv: list[str]) -> int:
    """Entry point of ``m23 render``; returns the exit status."""
    a = build_parser().parse_args(argv)
    if a.interpolate is not None and a.interpolate < 2:
        raise PipelineError(f"--interpolate must be 2 or more, got {a.interpolate}")
    if a.threads < 0 or a.queue < 1:
        raise PipelineError("--threads must be >= 0 and --queue >= 1")
    if a.crf < 0:
        raise PipelineError(f"--crf must be >= 0, got {a.crf:g}")
    settings = Settings(factor=a.interpolate or 1,
                        target_fps=parse_rate(a.fps) if a.fps is not None else None,
                        upscale=a.upscale, scene_cut=not a.no_scene_detect,
                        scene_threshold=a.scene_threshold)
    if not settings.interpolating and settings.upscale == 1:
        log.info("neither --interpolate, --fps nor --upscale given: re-encoding only")
    out = Path(a.output)
    check_output(out, a.input, a.overwrite)
    if not Path(a.input).exists():
        raise VideoError(f"input not found: {a.input}")
    engines = resolve_engines(settings, a.interp_model, a.sr_model, a.models, a.provider,
                              a.threads)
    options = EncodeOptions(codec=a.codec, crf=a.crf, preset=a.preset, pix_fmt=a.pix_fmt,
                            drop_streams=a.drop_audio, overwrite=a.overwrite)
    r = render(a.input, out, settings, engines, options, queue_size=a.queue,
               progress=not a.no_progress)
    log.info("wrote %s: %d frames (%d source, %d generated, %d repeated, %d scene cuts), "
             "%dx%d at %s fps, in %.1f s (%.1f frames/s)", out, r["frames"],
             r["source_frames"], r["generated"], r["repeated"], r["cuts"], r["width"],
             r["height"], r["rate"], r["seconds"], r["fps"])
    return 0
