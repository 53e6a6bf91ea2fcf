"""Evaluation of frame interpolation against classical baselines (``m23 eval interp``)."""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.classical import DISConfig, dis_interpolate
from training.data import DataError, read_image
from training.metrics import psnr_u8, ssim_u8

__all__ = ["EvalSample", "load_eval_samples", "baseline_methods", "evaluate_interp",
           "format_table", "Interpolate"]

log = logging.getLogger(__name__)

# (frame0, frame1, times) -> one uint8 (H, W, 3) frame per time.
Interpolate = Callable[[np.ndarray, np.ndarray, Sequence[float]], list[np.ndarray]]


@dataclass
class EvalSample:
    """Two input frames, the times to synthesize and the true frames at those times."""

    name: str
    frame0: np.ndarray
    frame1: np.ndarray
    times: list[float]
    truth: list[np.ndarray]


def load_eval_samples(root: str | Path, factor: int = 2) -> list[EvalSample]:
    """Read triplet and septuplet folders under ``root`` for a 2x or 4x evaluation.

    2x: triplets give im1, im3 -> im2; septuplets im3, im5 -> im4.
    4x: septuplets give im1, im5 -> im2, im3, im4 (triplets cannot be used).

    Raises:
        DataError: no samples, unreadable image, frames of different sizes, bad factor.
    """
    if factor not in (2, 4):
        raise DataError(f"--factor must be 2 or 4, got {factor}")
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder not found: {root}")
    folders = sorted(p.parent for p in root.rglob("im1.png"))
    samples: list[EvalSample] = []
    for folder in folders:
        has7 = all((folder / f"im{i}.png").is_file() for i in range(1, 8))
        has3 = all((folder / f"im{i}.png").is_file() for i in range(1, 4))
        if factor == 2 and has7:
            idx, mids, times = (3, 5), [4], [0.5]
        elif factor == 2 and has3:
            idx, mids, times = (1, 3), [2], [0.5]
        elif factor == 4 and has7:
            idx, mids, times = (1, 5), [2, 3, 4], [0.25, 0.5, 0.75]
        else:
            continue
        imgs = {i: read_image(folder / f"im{i}.png") for i in (*idx, *mids)}
        shapes = {im.shape for im in imgs.values()}
        if len(shapes) != 1:
            raise DataError(f"frames of {folder} differ in size: {sorted(shapes)}")
        samples.append(EvalSample(str(folder.relative_to(root)), imgs[idx[0]], imgs[idx[1]],
                                  times, [imgs[m] for m in mids]))
    if not samples:
        need = "septuplets (im1..im7)" if factor == 4 else "triplets or septuplets"
        raise DataError(f"no {need} found under {root}")
    return samples


def _repeat(f0: np.ndarray, f1: np.ndarray, ts: Sequence[float]) -> list[np.ndarray]:
    return [f0.copy() if t < 0.5 else f1.copy() for t in ts]


def _blend(f0: np.ndarray, f1: np.ndarray, ts: Sequence[float]) -> list[np.ndarray]:
    a, b = f0.astype(np.float32), f1.astype(np.float32)
    return [np.clip(np.rint((1 - t) * a + t * b), 0, 255).astype(np.uint8) for t in ts]


def _dis(preset: str) -> Interpolate:
    cfg = DISConfig(preset=preset)

    def run(f0: np.ndarray, f1: np.ndarray, ts: Sequence[float]) -> list[np.ndarray]:
        return [dis_interpolate(f0, f1, t, cfg) for t in ts]

    return run


def baseline_methods() -> dict[str, Interpolate]:
    """The classical baselines: frame repeat, linear blend, DIS ultrafast and medium."""
    return {"repeat": _repeat, "linear_blend": _blend,
            "dis_ultrafast": _dis("ultrafast"), "dis_medium": _dis("medium")}


def evaluate_interp(
    samples: Sequence[EvalSample],
    methods: dict[str, Interpolate],
    set_name: str = "",
    warmup: bool = True,
) -> dict[str, Any]:
    """Score every method on every sample.

    Returns:
        ``{"set", "n", "results": {method: {"psnr", "ssim", "ms"}}}``: mean RGB PSNR (dB) and
        SSIM over all synthesized frames, median milliseconds per synthesized frame.
    """
    results: dict[str, dict[str, float]] = {}
    for name, fn in methods.items():
        if warmup:
            s = samples[0]
            fn(s.frame0, s.frame1, s.times)
        ps, ss, ms = [], [], []
        for s in samples:
            t0 = time.perf_counter()
            preds = fn(s.frame0, s.frame1, s.times)
            ms.append((time.perf_counter() - t0) * 1000.0 / len(s.times))
            for p, gt in zip(preds, s.truth, strict=True):
                ps.append(psnr_u8(p, gt))
                ss.append(ssim_u8(p, gt))
        results[name] = {"psnr": float(np.mean(ps)), "ssim": float(np.mean(ss)),
                         "ms": float(statistics.median(ms))}
        log.info("%s: %.2f dB", name, results[name]["psnr"])
    return {"set": set_name, "n": len(samples), "results": results}


def format_table(report: dict[str, Any]) -> str:
    """A plain-text table of an evaluation report."""
    lines = [f"set: {report['set']}  samples: {report['n']}",
             f"{'method':<22}{'PSNR dB':>9}{'SSIM':>8}{'ms/frame':>10}"]
    for name, r in report["results"].items():
        lines.append(f"{name:<22}{r['psnr']:>9.2f}{r['ssim']:>8.4f}{r['ms']:>10.1f}")
    return "\n".join(lines)
