"""Variants of the classical part of the shipped interpolator, measured on one evaluation set.

The shipped model (`interp_occ`) fuses two bicubic warps made with OpenCV DIS flow (ultrafast
preset, finest level of at most 80,000 pixels). This script measures what other settings of
that classical part would give, with the even blend of the two warps (no learned mask), so
that a choice of settings can be checked on sets other than the test sets:

- DIS settings: patch mean normalization off, variational refinement, patch stride 3, more
  gradient-descent iterations (PSNR and the median ms of both flows);
- bilinear instead of bicubic warps;
- the per-8x8-block oracle (uses the true frame: an upper bound) of a fusion of 2 candidate
  warps (the shipped pair) against 3 and 4 candidates, where the extra candidates warp a frame
  with a one-directional flow (frame 0 with t F10 or -t F01, frame 1 with (1-t) F01 or
  -(1-t) F10).

Usage: python assets/results/interp_classical_variants.py --data DIR [--json PATH]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.classical import DISConfig, pixel_grid
from training.evaluate import load_eval_samples

SHIPPED = DISConfig(preset="ultrafast", max_pixels=80_000)


def _no_mean_norm(d: Any) -> None:
    d.setUseMeanNormalization(False)


DIS_VARIANTS: dict[str, Callable[[Any], None]] = {
    "shipped (ultrafast, level by pixel budget)": lambda d: None,
    "mean normalization off": _no_mean_norm,
    "variational refinement, 2 iterations": lambda d: d.setVariationalRefinementIterations(2),
    "variational refinement, 5 iterations": lambda d: d.setVariationalRefinementIterations(5),
    "patch stride 3": lambda d: d.setPatchStride(3),
    "gradient descent 24 iterations": lambda d: d.setGradientDescentIterations(24),
}


def flows(f0: np.ndarray, f1: np.ndarray, tweak: Callable[[Any], None]) -> tuple[np.ndarray, ...]:
    """Both DIS flows with the shipped settings changed by ``tweak``."""
    g0 = cv2.cvtColor(f0, cv2.COLOR_RGB2GRAY)
    g1 = cv2.cvtColor(f1, cv2.COLOR_RGB2GRAY)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
    level = SHIPPED.level(*g0.shape)
    if level is not None:
        dis.setFinestScale(level)
    tweak(dis)
    return dis.calc(g0, g1, None), dis.calc(g1, g0, None)


def warp(img: np.ndarray, positions: np.ndarray, interp: int = cv2.INTER_CUBIC) -> np.ndarray:
    return cv2.remap(img, positions, None, interp,
                     borderMode=cv2.BORDER_REPLICATE).astype(np.float32)


def psnr_f(x: np.ndarray, truth: np.ndarray) -> float:
    """PSNR of a float image rounded to uint8, as the evaluation scores it."""
    x8 = np.clip(np.rint(x), 0, 255)
    mse = float(((x8 - truth) ** 2).mean())
    return 10 * float(np.log10(255.0**2 / max(mse, 1e-10)))


def block_sum(x: np.ndarray, b: int, hb: int, wb: int) -> np.ndarray:
    return x[: hb * b, : wb * b].reshape(hb, b, wb, b).sum((1, 3))


def pair_oracle_sse(a: np.ndarray, c: np.ndarray, truth: np.ndarray, b: int) -> np.ndarray:
    """Per-block squared error of the best blend m a + (1-m) c, m in [0, 1] per block."""
    hb, wb = truth.shape[0] // b, truth.shape[1] // b
    d, e = a - c, truth - c
    n = block_sum((d * e).sum(2), b, hb, wb)
    q = block_sum((d * d).sum(2), b, hb, wb)
    e2 = block_sum((e * e).sum(2), b, hb, wb)
    m = np.clip(n / (q + 1e-3), 0.0, 1.0)
    return e2 - 2 * m * n + m * m * q


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--json")
    a = p.parse_args(argv)
    cv2.setNumThreads(1)
    samples = load_eval_samples(a.data, 2)
    psnr: dict[str, list[float]] = {}
    ms: dict[str, list[float]] = {}
    t = 0.5
    for s in samples:
        f0, f1 = s.frame0, s.frame1
        truth = s.truth[0].astype(np.float32)
        h, w = f0.shape[:2]
        g = pixel_grid(h, w)
        shipped_flows: tuple[np.ndarray, ...] = ()
        for name, tweak in DIS_VARIANTS.items():
            t0 = time.perf_counter()
            f01, f10 = flows(f0, f1, tweak)
            ms.setdefault(name, []).append(1000 * (time.perf_counter() - t0))
            if not shipped_flows:
                shipped_flows = (f01, f10)
            m0 = g - (1 - t) * t * f01 + t * t * f10
            m1 = g + (1 - t) ** 2 * f01 - t * (1 - t) * f10
            psnr.setdefault(name, []).append(psnr_f((warp(f0, m0) + warp(f1, m1)) / 2, truth))
        f01, f10 = shipped_flows
        m0 = g - (1 - t) * t * f01 + t * t * f10
        m1 = g + (1 - t) ** 2 * f01 - t * (1 - t) * f10
        lin = (warp(f0, m0, cv2.INTER_LINEAR) + warp(f1, m1, cv2.INTER_LINEAR)) / 2
        psnr.setdefault("bilinear warps (shipped flows)", []).append(psnr_f(lin, truth))
        cand = {"w0": warp(f0, m0), "w1": warp(f1, m1),
                "w0 by t F10": warp(f0, g + t * f10), "w0 by -t F01": warp(f0, g - t * f01),
                "w1 by (1-t) F01": warp(f1, g + (1 - t) * f01),
                "w1 by -(1-t) F10": warp(f1, g - (1 - t) * f10)}
        b = 8
        n = (h // b) * b * (w // b) * b * 3
        for names in (("w0", "w1"), ("w0", "w1", "w0 by t F10"), ("w0", "w1", "w1 by -(1-t) F10"),
                      ("w0", "w1", "w0 by t F10", "w1 by -(1-t) F10"),
                      ("w0", "w1", "w0 by -t F01", "w1 by (1-t) F01")):
            sse = np.min(np.stack([pair_oracle_sse(cand[x], cand[y], truth, b)
                                   for x, y in itertools.combinations(names, 2)]), 0).sum()
            key = f"oracle 8x8: best blend of two of {{{', '.join(names)}}}"
            psnr.setdefault(key, []).append(10 * float(np.log10(255.0**2 / (sse / n))))
    rows = {k: {"psnr": float(np.mean(v)), **({"ms": float(np.median(ms[k]))} if k in ms else {})}
            for k, v in psnr.items()}
    out = sys.stdout
    out.write(f"{Path(a.data).name}: {len(samples)} samples, t = 0.5, even blend unless oracle\n")
    for k, r in rows.items():
        extra = f"  {r['ms']:.1f} ms" if "ms" in r else ""
        out.write(f"{r['psnr']:8.3f} dB  {k}{extra}\n")
    if a.json:
        Path(a.json).write_text(json.dumps({"set": Path(a.data).name, "n": len(samples),
                                            "results": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
