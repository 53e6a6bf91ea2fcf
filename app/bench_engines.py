"""``m23 bench engines``: the engines side by side in one run.

For interpolation (one frame at t = 0.5 per pair) and x2 upscaling, at 480p and 720p inputs:
ms per output frame of ONNX Runtime (1 and 2 intra-op threads), the PyTorch backend (eager,
the same weights) and the classical baseline (OpenCV DIS ultrafast with linear warps and a
blend; cv2 bicubic), with ratios to the baseline. Frames are two consecutive frames of the
shipped sample video, resized to each size. Table on stdout, rows as JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main", "parse_size", "sample_pair", "time_ms"]

SIZES = {"480p": (480, 854), "720p": (720, 1280)}
SAMPLE = Path(__file__).resolve().parent.parent / "assets" / "sample.mp4"


def parse_size(text: str) -> tuple[str, tuple[int, int]]:
    """``"480p"``/``"720p"`` or ``"HxW"`` -> (label, (H, W))."""
    if text in SIZES:
        return text, SIZES[text]
    try:
        h, w = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be 480p, 720p or HxW, got {text!r}") from None
    if h < 16 or w < 16:
        raise argparse.ArgumentTypeError(f"size must be at least 16x16, got {text!r}")
    return text, (h, w)


def sample_pair(h: int, w: int, video: Path = SAMPLE) -> tuple[np.ndarray, np.ndarray]:
    """Two consecutive frames (frames 30 and 31) of ``video`` resized to (h, w, 3) uint8 RGB."""
    import av
    import cv2

    frames = []
    with av.open(str(video)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i >= 30:
                frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == 2:
                break
    if len(frames) < 2:
        raise ValueError(f"{video} has fewer than 32 frames")
    return tuple(cv2.resize(f, (w, h), interpolation=cv2.INTER_CUBIC)  # type: ignore[return-value]
                 for f in frames)


def time_ms(fn: Callable[[], Any], runs: int, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in ms over ``runs`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


def _engines(a: argparse.Namespace) -> dict[str, dict[str, Callable[..., Any]]]:
    """Method name -> callable, for "interp" (f0, f1) and "sr" (img)."""
    import cv2

    from app.discovery import find_model
    from app.engines import OnnxInterpolator, TorchInterpolator
    from app.upscale import OnnxUpscaler, TorchUpscaler
    from models.classical import DISConfig, dis_interpolate

    interp_onnx = find_model("interp", None, a.interp_onnx or a.models)
    sr_onnx = find_model("sr", 2, a.sr_onnx or a.models)
    interp_ck = a.interp_checkpoint or interp_onnx.with_suffix(".safetensors")
    sr_ck = a.sr_checkpoint or sr_onnx.with_suffix(".safetensors")
    interp: dict[str, Callable[..., Any]] = {}
    sr: dict[str, Callable[..., Any]] = {}
    dis = DISConfig(preset="ultrafast")
    interp["DIS ultrafast (baseline)"] = lambda f0, f1: dis_interpolate(f0, f1, 0.5, dis)
    sr["cv2 bicubic (baseline)"] = lambda img: cv2.resize(img, None, fx=2, fy=2,
                                                         interpolation=cv2.INTER_CUBIC)
    for n in a.threads:
        label = f"ONNX Runtime {n} thread{'s' if n > 1 else ''}"
        ie = OnnxInterpolator(interp_onnx, provider=a.provider, threads=n)
        interp[label] = lambda f0, f1, e=ie: e(f0, f1, [0.5])
        sr[label] = OnnxUpscaler(sr_onnx, provider=a.provider, threads=n, scale=2)
    if not a.no_torch:
        n = a.threads[0]
        # The DIS settings of the ONNX file, so both backends compute the same thing.
        classical = json.loads(OnnxInterpolator(interp_onnx, "cpu").meta["classical"])
        ti = TorchInterpolator(interp_ck, provider="cpu", threads=n, classical=classical)
        interp[f"PyTorch eager {n} thread{'s' if n > 1 else ''}"] = \
            lambda f0, f1, e=ti: e(f0, f1, [0.5])
        sr[f"PyTorch eager {n} thread{'s' if n > 1 else ''}"] = \
            TorchUpscaler(sr_ck, provider="cpu", threads=n, scale=2)
    return {"interp": interp, "sr": sr}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    p = argparse.ArgumentParser(
        prog="m23 bench engines",
        description="ms per frame: interpolation (t=0.5) and x2 upscaling at 480p and 720p, "
        "ONNX Runtime vs PyTorch eager vs the classical baseline, in one run.")
    p.add_argument("--models", default=None, help="folder with interp_occ4.onnx and sr_x2.onnx "
                   "(+ .json, .safetensors); default: the shipped assets/")
    p.add_argument("--interp-onnx", default=None, help="interpolation .onnx (overrides --models)")
    p.add_argument("--sr-onnx", default=None, help="x2 SR .onnx (overrides --models)")
    p.add_argument("--interp-checkpoint", default=None,
                   help="PyTorch weights for the eager run (default: the .safetensors beside "
                   "the .onnx)")
    p.add_argument("--sr-checkpoint", default=None)
    p.add_argument("--sizes", type=parse_size, nargs="+", default=None,
                   help="480p, 720p or HxW (default: 480p 720p)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                   help="ONNX Runtime intra-op thread counts to compare (PyTorch uses the first)")
    p.add_argument("--provider", default="cpu", help="ONNX Runtime provider (default cpu)")
    p.add_argument("--runs", type=int, default=None, help="timed runs per row (default 10; "
                   "3 with --quick)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch eager rows")
    p.add_argument("--quick", action="store_true", help="3 runs, 480p only (unless --sizes)")
    p.add_argument("--json", default=None, help="write the rows here")
    a = p.parse_args(argv)
    runs = a.runs if a.runs is not None else (3 if a.quick else 10)
    if runs < 1 or any(n < 1 for n in a.threads):
        p.error("--runs and --threads must be >= 1")
    sizes = a.sizes or ([("480p", SIZES["480p"])] if a.quick else list(SIZES.items()))
    if a.json and Path(a.json).suffix != ".json":
        p.error(f"--json must end in .json: {a.json}")
    engines = _engines(a)
    rows: list[dict[str, Any]] = []
    for label, (h, w) in sizes:
        f0, f1 = sample_pair(h, w)
        for task, methods in engines.items():
            group = []
            for name, fn in methods.items():
                args = (f0, f1) if task == "interp" else (f0,)
                call: Callable[[], object] = functools.partial(fn, *args)
                ms = time_ms(call, runs)
                group.append({"task": "interp 2x" if task == "interp" else "sr x2",
                              "input": label, "height": h, "width": w, "method": name,
                              "ms": round(ms, 2), "fps": round(1000.0 / ms, 2)})
            base = group[0]["ms"]
            eager = next((r["ms"] for r in group if r["method"].startswith("PyTorch")), None)
            for r in group:
                r["vs_baseline"] = round(r["ms"] / base, 2) if base > 0 else None
                r["vs_pytorch"] = round(r["ms"] / eager, 3) if eager else None
            rows.extend(group)
    sys.stdout.write(f"{'task':<10}{'input':<9}{'method':<28}{'ms/frame':>10}{'fps':>9}"
                     f"{'x baseline':>12}{'x PyTorch':>11}\n")
    for r in rows:
        vb = "-" if r["vs_baseline"] is None else f"{r['vs_baseline']:.2f}"
        vt = "-" if r["vs_pytorch"] is None else f"{r['vs_pytorch']:.3f}"
        sys.stdout.write(f"{r['task']:<10}{r['input']:<9}{r['method']:<28}{r['ms']:>10.1f}"
                         f"{r['fps']:>9.1f}{vb:>12}{vt:>11}\n")
    if a.json:
        report = {"benchmark": "engines", "runs": runs, "cpu_count": os.cpu_count(),
                  "machine": platform.machine(), "load_avg_1min": os.getloadavg()[0],
                  "note": "ms per output frame (median); vs_baseline = ms / baseline ms, "
                  "vs_pytorch = ms / PyTorch eager ms",
                  "rows": rows}
        out = Path(a.json)
        tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
        tmp.write_text(json.dumps(report, indent=2) + "\n")
        os.replace(tmp, out)
    return 0
