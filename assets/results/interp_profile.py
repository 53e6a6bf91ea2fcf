"""Where the time of the shipped interpolator goes, stage by stage, beside DIS ultrafast.

Runs the shipped ``interp_occ4`` (and ``interp_occ``) engines end to end and each stage of the
``interp_occ4`` pipeline alone, on the first frames of an evaluation set, with OpenCV and ONNX
Runtime on one thread; the DIS ultrafast baseline of ``m23 eval interp`` is timed in the same
run. Prints a table of median milliseconds per middle frame (and the ratio to the baseline)
and can write it as JSON.

Usage: python assets/results/interp_profile.py --data DIR [--n 10] [--repeats 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from app.engines import OnnxInterpolator, _blend4
from models.classical import (
    DISConfig,
    dis_flows,
    dis_interpolate,
    extra_candidates,
    half_frames,
    occlusion_features,
    pixel_grid,
    warp_to_time,
)
from training.evaluate import load_eval_samples

ASSETS = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="a folder of triplets or septuplets")
    p.add_argument("--n", type=int, default=10, help="samples to use")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json")
    a = p.parse_args(argv)
    cv2.setNumThreads(1)
    samples = load_eval_samples(a.data)[: a.n]
    occ4 = OnnxInterpolator(ASSETS / "interp_occ4.onnx", "cpu", threads=1)
    occ2 = OnnxInterpolator(ASSETS / "interp_occ.onnx", "cpu", threads=1)
    if occ4.dis is None:
        raise SystemExit("error: interp_occ4.onnx has no classical flow settings")
    cfg, block = occ4.dis, occ4.core_scale
    times: dict[str, list[float]] = {}

    def timed(name: str, fn: Callable[..., Any], *args: Any) -> Any:
        t0 = time.perf_counter()
        out = fn(*args)
        times.setdefault(name, []).append(1000.0 * (time.perf_counter() - t0))
        return out

    baseline = "DIS ultrafast (the eval's baseline, end to end)"
    ultrafast = DISConfig("ultrafast")
    for _ in range(a.repeats):
        for s in samples:
            f0, f1 = s.frame0, s.frame1
            h, w = f0.shape[:2]
            timed(baseline, dis_interpolate, f0, f1, 0.5, ultrafast)
            timed("interp_occ, end to end", occ2, f0, f1, [0.5])
            timed("interp_occ4, end to end", occ4, f0, f1, [0.5])
            g = pixel_grid(h, w)
            f01, f10 = timed("  DIS flows (both directions)", dis_flows, f0, f1, cfg)
            m0, m1, w0, w1 = timed("  two bicubic warps to time t", warp_to_time,
                                   f0, f1, f01, f10, 0.5, g)
            hv = timed("  2x2-averaged frames", half_frames, w0, w1, f0, f1, block)
            cues = timed("  12 occlusion cues", occlusion_features,
                         f0, f1, f01, f10, m0, m1, w0, w1, 0.5, block, hv)
            c2, c3, more = timed("  extra candidates and their 9 cues", extra_candidates,
                                 f0, f1, f10, w0, w1, 0.5, block, hv)
            x = np.concatenate([cues, more])[None]
            logits = timed("  fusion network (ONNX Runtime)", occ4.model.run, {"features": x})
            timed("  four-way blend", _blend4, w0, w1, c2, c3, logits[0], 0.5, block)
    base = float(np.median(times[baseline]))
    rows = {k: {"ms": float(np.median(v)), "x_baseline": float(np.median(v)) / base}
            for k, v in times.items()}
    out = sys.stdout
    out.write(f"{Path(a.data).name}: {len(samples)} samples x {a.repeats}, "
              f"{samples[0].frame0.shape[1]}x{samples[0].frame0.shape[0]} first, 1 thread\n")
    for k, r in rows.items():
        out.write(f"{k:<50} {r['ms']:7.2f} ms {r['x_baseline']:6.2f}x\n")
    if a.json:
        Path(a.json).write_text(json.dumps({"set": Path(a.data).name, "n": len(samples),
                                            "repeats": a.repeats, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
