"""``m23 bench sr``: upscaling speed of the shipped ONNX models beside OpenCV bicubic."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main"]

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SIZES = {"360p": (360, 640), "480p": (480, 854), "720p": (720, 1280)}


def main(argv: list[str] | None = None) -> int:
    """Print ms per frame for x2 (and x4) upscaling at 360p/480p/720p inputs, ONNX Runtime with
    1 and 2 threads against cv2 bicubic in the same run; ``--json PATH`` writes the rows."""
    import cv2

    from app.upscale import OnnxUpscaler, benchmark_upscaler

    p = argparse.ArgumentParser(prog="m23 bench sr")
    p.add_argument("--json", default=None)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--scales", type=int, nargs="+", default=[2, 4])
    p.add_argument("--models", default=str(ASSETS), help="folder with sr_x2.onnx, sr_x4.onnx")
    a = p.parse_args(argv)
    rows: list[dict[str, Any]] = []
    for scale in a.scales:
        path = Path(a.models) / f"sr_x{scale}.onnx"
        engines = {f"{path.stem} ORT {n} thread{'s' if n > 1 else ''}":
                   OnnxUpscaler(path, provider="cpu", threads=n, scale=scale) for n in (1, 2)}

        def bicubic(img: np.ndarray, s: int = scale) -> np.ndarray:
            return cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC)

        for res, (h, w) in SIZES.items():
            methods: dict[str, Callable[[np.ndarray], np.ndarray]] = {
                **engines, "cv2 bicubic": bicubic}
            for name, fn in methods.items():
                r = benchmark_upscaler(fn, h, w, runs=a.runs)
                ms = r["median_ms"]
                rows.append({"job": f"sr_x{scale}", "res": res, "method": name,
                             "ms": round(ms, 2), "fps": round(1000 / ms, 1)})
    sys.stdout.write(f"{'job':<7}{'input':<7}{'method':<26}{'ms':>9}{'fps':>8}\n")
    for r in rows:
        sys.stdout.write(f"{r['job']:<7}{r['res']:<7}{r['method']:<26}{r['ms']:>9.1f}"
                         f"{r['fps']:>8.1f}\n")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2))
    return 0
