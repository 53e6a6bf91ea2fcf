"""``m23 bench [pipeline] [--json PATH] [--quick]``: the speed of every stage of the video
pipeline beside the classical baselines, in one run.

Jobs (each row ``{"job", "res", "method", "ms", "fps"}``; ``ms`` per output frame):

- ``decode``: PyAV decoding to RGB, on the shipped sample video and on H.264 clips of synthetic
  frames (a panning texture) at 480p, 720p, 1080p.
- ``interp2x`` / ``interp4x``: one frame at t = 1/2, or three frames at t = 1/4, 1/2, 3/4 in one
  call, per generated frame: ours (the ONNX model) and OpenCV DIS ultrafast.
- ``upscale2x``: ours (the x2 ONNX model) and ``cv2.resize`` bicubic, per input resolution.
- ``encode``: PyAV H.264 (the render defaults: CRF 18, preset veryfast).
- ``render2x`` / ``render4x``: ``m23 render --interpolate N`` end to end on 30 fps clips (decode,
  scene cuts, interpolation, encode, in the pipeline's threads); these rows also carry
  ``"realtime"``: output fps / (source fps x N), 1.0 or more is real time.

The models are the shipped ones (``assets/``) unless ``--models``, ``--interp-model`` or
``--sr-model`` say otherwise; a missing model is an error (no row silently left out).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from app.pipeline import BicubicUpscaler, DisInterpolator, Engines, PipelineError, Settings
from app.video import Decoder, EncodeOptions, Encoder, Frame

__all__ = ["main", "synthetic_frames", "SIZES"]

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SAMPLE = ASSETS / "sample.mp4"
SIZES = {"480p": (480, 854), "720p": (720, 1280), "1080p": (1080, 1920)}
SOURCE_FPS = Fraction(30)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise PipelineError(f"{self.prog}: {message}")


def synthetic_frames(n: int, h: int, w: int, step: int = 4, seed: int = 0) -> list[np.ndarray]:
    """``n`` (h, w, 3) uint8 RGB frames of a smooth random texture panning ``step`` pixels
    right per frame (motion for the interpolators, detail for the encoder)."""
    import cv2

    rng = np.random.default_rng(seed)
    ww = w + step * n
    small = rng.integers(0, 256, (max(2, h // 12), max(2, ww // 12), 3), dtype=np.uint8)
    big = cv2.resize(small, (ww, h), interpolation=cv2.INTER_CUBIC)
    return [np.ascontiguousarray(big[:, step * i: step * i + w]) for i in range(n)]


def _median_ms(fn: Callable[[], Any], runs: int, per: int = 1) -> float:
    fn()  # warm-up (session start, caches)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0 / per)
    return statistics.median(times)


def _row(job: str, res: str, method: str, ms: float, **extra: float) -> dict[str, Any]:
    return {"job": job, "res": res, "method": method, "ms": round(ms, 4),
            "fps": round(1000.0 / ms, 1) if ms > 0 else 0.0,
            **{k: round(v, 3) for k, v in extra.items()}}


def _write_clip(path: Path, frames: list[np.ndarray], rate: Fraction) -> Path:
    h, w = frames[0].shape[:2]
    with Encoder(path, w, h, 1 / rate, rate, options=EncodeOptions(crf=20)) as enc:
        for i, f in enumerate(frames):
            enc.write(Frame(f, Fraction(i) / rate))
        enc.close()
    return path


def _decode_ms(path: Path) -> float:
    t0 = time.perf_counter()
    n = sum(1 for _ in Decoder(path).frames())
    return (time.perf_counter() - t0) * 1000.0 / max(1, n)


def _encode_ms(frames: list[np.ndarray], folder: Path) -> float:
    h, w = frames[0].shape[:2]
    out = folder / f"enc_{w}x{h}.mp4"
    rate = SOURCE_FPS
    t0 = time.perf_counter()
    with Encoder(out, w, h, 1 / rate, rate, options=EncodeOptions(overwrite=True)) as enc:
        for i, f in enumerate(frames):
            enc.write(Frame(f, Fraction(i) / rate))
        enc.close()
    return (time.perf_counter() - t0) * 1000.0 / len(frames)


def _render(src: Path, out: Path, factor: int, engines: Engines) -> tuple[float, float]:
    """ms per output frame and the real-time ratio of rendering ``src`` at ``factor``."""
    from app.render import render

    r = render(src, out, Settings(factor=factor), engines,
               EncodeOptions(overwrite=True), progress=False)
    info = Decoder(src).info
    ms = r["seconds"] * 1000.0 / r["frames"]
    return ms, r["fps"] / float(info.fps * factor)


def parse_size(text: str) -> tuple[str, tuple[int, int]]:
    """"480p"/"720p"/"1080p" or "WxH" -> (label, (height, width))."""
    if text in SIZES:
        return text, SIZES[text]
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise PipelineError(f"bad size {text!r}; use 480p, 720p, 1080p or WxH") from None
    if w < 16 or h < 16:
        raise PipelineError(f"size must be at least 16x16, got {text}")
    return f"{w}x{h}", (h, w)


def run(quick: bool, interp: Any, up2: Any, folder: Path,
        sizes: dict[str, tuple[int, int]] | None = None, frames: int | None = None,
        sample: bool = True) -> list[dict[str, Any]]:
    """All benchmark rows (see the module docstring).

    Args:
        quick: 480p and 720p only (unless ``sizes``), 3 timed runs, 8-frame clips.
        interp, up2: our interpolator and x2 upscaler.
        folder: where the clips and outputs go.
        sizes: label -> (height, width) of the synthetic clips (default: by ``quick``).
        frames: source frames per synthetic clip (default: by ``quick``).
        sample: also decode and render the shipped sample video.
    """
    if sizes is None:
        sizes = {k: v for k, v in SIZES.items() if not quick or k != "1080p"}
    runs = 3 if quick else 10
    n_clip = frames or (8 if quick else 30)
    ours_e = Engines(lambda: interp)
    dis = DisInterpolator("ultrafast")
    dis_e = Engines(lambda: dis)
    bicubic = BicubicUpscaler(2)
    rows: list[dict[str, Any]] = []
    if sample and SAMPLE.is_file():
        info = Decoder(SAMPLE).info
        res = f"sample {info.width}x{info.height}"
        rows.append(_row("decode", res, "pyav", _decode_ms(SAMPLE)))
        for factor in (2, 4):
            ms, rt = _render(SAMPLE, folder / "sample_out.mp4", factor, ours_e)
            rows.append(_row(f"render{factor}x", res, "ours", ms, realtime=rt))
    for res, (h, w) in sizes.items():
        log.info("benchmarking %s", res)
        pics = synthetic_frames(n_clip, h, w)
        clip = _write_clip(folder / f"src_{res}.mp4", pics, SOURCE_FPS)
        rows.append(_row("decode", res, "pyav", _decode_ms(clip)))
        for job, ts in (("interp2x", [0.5]), ("interp4x", [0.25, 0.5, 0.75])):
            for method, fn in (("ours", interp), ("dis ultrafast", dis)):
                ms = _median_ms(partial(fn, pics[0], pics[1], ts), runs, per=len(ts))
                rows.append(_row(job, res, method, ms))
        for method, up in (("ours", up2), ("bicubic", bicubic)):
            rows.append(_row("upscale2x", res, method, _median_ms(partial(up, pics[0]), runs)))
        rows.append(_row("encode", res, "libx264 veryfast", _encode_ms(pics, folder)))
        for factor in (2, 4):
            for method, eng in (("ours", ours_e), ("dis ultrafast", dis_e)):
                ms, rt = _render(clip, folder / f"out_{res}.mp4", factor, eng)
                rows.append(_row(f"render{factor}x", res, method, ms, realtime=rt))
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """Methods of one job and resolution side by side; ours / baseline speed ratio."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["job"], r["res"]), []).append(r)
    head = (f"{'job':<10}{'res':<20}{'method':<18}{'ms/frame':>9}{'fps':>8}"
            f"{'baseline':>18}{'ms/frame':>9}{'fps':>8}{'speed':>7}{'real time':>10}")
    lines = [head, "-" * len(head)]
    for (job, res), rs in groups.items():
        ours = next((r for r in rs if r["method"] == "ours"), rs[0])
        base = next((r for r in rs if r is not ours), None)
        line = f"{job:<10}{res:<20}{ours['method']:<18}{ours['ms']:>9.1f}{ours['fps']:>8.1f}"
        if base is not None:
            speed = base["ms"] / ours["ms"] if ours["ms"] > 0 else 0.0
            line += f"{base['method']:>18}{base['ms']:>9.1f}{base['fps']:>8.1f}{speed:>6.2f}x"
        else:
            line += " " * 42
        if "realtime" in ours:
            line += f"{ours['realtime']:>9.2f}x"
            if base is not None and "realtime" in base:
                line += f" (baseline {base['realtime']:.2f}x)"
        lines.append(line)
    lines.append("speed: baseline ms / ours ms (above 1: ours faster). real time: output fps / "
                 "(source fps x factor), sources at 30 fps (the sample: 25 fps).")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Entry point of ``m23 bench [pipeline]``; returns the exit status."""
    p = _Parser(prog="m23 bench", description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--json", default=None, metavar="PATH", help="also write the rows as JSON")
    p.add_argument("--quick", action="store_true", help="480p and 720p, fewer runs")
    p.add_argument("--models", default=None, metavar="DIR", help="folder with the models")
    p.add_argument("--interp-model", default=None, metavar="PATH")
    p.add_argument("--sr-model", default=None, metavar="PATH", help="the x2 model")
    p.add_argument("--provider", default="auto", choices=["auto", "cpu", "cuda", "tensorrt"])
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per engine")
    p.add_argument("--sizes", nargs="+", default=None, metavar="SIZE",
                   help="synthetic frame sizes: 480p, 720p, 1080p or WxH (default: all three; "
                   "--quick: 480p 720p)")
    p.add_argument("--frames", type=int, default=None, help="frames per synthetic clip")
    p.add_argument("--no-sample", action="store_true", help="leave out the sample video")
    a = p.parse_args(argv)
    sizes = dict(parse_size(x) for x in a.sizes) if a.sizes else None
    if a.frames is not None and a.frames < 2:
        raise PipelineError(f"--frames must be at least 2, got {a.frames}")
    from app.render import resolve_engines

    engines = resolve_engines(Settings(factor=2, upscale=2), a.interp_model, a.sr_model,
                              a.models, a.provider, a.threads)
    interp, up2 = engines.interpolator(), engines.upscaler(2)
    if a.json:
        out = Path(a.json)
        if not out.parent.is_dir():
            raise PipelineError(f"cannot write {out}: no such folder")
    with tempfile.TemporaryDirectory(prefix="m23-bench-") as tmp:
        rows = run(a.quick, interp, up2, Path(tmp), sizes, a.frames, not a.no_sample)
    sys.stdout.write(format_table(rows) + "\n")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0
