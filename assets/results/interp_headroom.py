"""How much a better fusion mask could gain for the shipped interpolation model (an analysis).

The shipped model's classical part is DIS flow, flows to time t, bicubic warps of both frames
and an even blend; what ``interp_occ`` learns is the blend (a mask per 8x8 block). This script
measures, per data set, the shipped ONNX model beside its classical part and beside *upper
bounds* that cheat by looking at the true middle frame: the best fusion mask per block of 8x8,
4x4, 2x2 pixels and per pixel (least squares against the truth, bilinearly upsampled), with the
same warped frames. A mask at 1/8 resolution cannot do better than the 8x8 bound. Also:
horizontal-flip test-time averaging (twice the flow cost) and DIS medium, the baseline of the
goal.

Usage (from the repository root, ../shared/data present):
    python assets/results/interp_headroom.py --data ../shared/data/vfi/ucf101_small \
        --json assets/results/headroom_ucf101_small.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from app.engines import OnnxInterpolator
from models.classical import DISConfig, dis_flows, dis_interpolate, warp_to_time
from training.evaluate import load_eval_samples
from training.metrics import psnr_u8

ASSETS = Path(__file__).resolve().parent.parent


def warped_pair(f0: np.ndarray, f1: np.ndarray, cfg: DISConfig,
                t: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Both frames warped to time t as the shipped engine does it (float32, 0..255)."""
    a, b = dis_flows(f0, f1, cfg)
    _, _, w0, w1 = warp_to_time(f0, f1, a, b, t)
    return w0.astype(np.float32), w1.astype(np.float32)


def u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def oracle_blend(w0: np.ndarray, w1: np.ndarray, truth: np.ndarray, block: int) -> np.ndarray:
    """The blend m*w0 + (1-m)*w1 with m the least-squares best per block (uses the truth)."""
    h, w = truth.shape[:2]
    d, e = w0 - w1, truth.astype(np.float32) - w1
    num, den = (d * e).sum(2), (d * d).sum(2)
    if block > 1:
        size = (max(1, w // block), max(1, h // block))
        num = cv2.resize(num, size, interpolation=cv2.INTER_AREA)
        den = cv2.resize(den, size, interpolation=cv2.INTER_AREA)
    m = np.clip(num / (den + 1e-3), 0.0, 1.0)
    if block > 1:
        m = cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
    return m[..., None] * w0 + (1 - m[..., None]) * w1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="a folder of triplets or septuplets")
    p.add_argument("--onnx", default=str(ASSETS / "interp_occ4.onnx"))
    p.add_argument("--json", help="write the table as JSON here")
    args = p.parse_args(argv)
    samples = load_eval_samples(args.data)
    engine = OnnxInterpolator(args.onnx, "cpu", threads=1)
    cfg = engine.dis
    if cfg is None:
        raise SystemExit("error: the model is not a hybrid (no classical flow)")
    rows: dict[str, list[float]] = {}

    def add(name: str, img: np.ndarray, truth: np.ndarray) -> None:
        rows.setdefault(name, []).append(psnr_u8(img, truth))

    for s in samples:
        gt = s.truth[0]
        add("shipped model (ONNX engine)", engine(s.frame0, s.frame1, [0.5])[0], gt)
        w0, w1 = warped_pair(s.frame0, s.frame1, cfg)
        add("its classical part", u8(0.5 * w0 + 0.5 * w1), gt)
        v0, v1 = warped_pair(s.frame0[:, ::-1].copy(), s.frame1[:, ::-1].copy(), cfg)
        flip = 0.5 * w0 + 0.5 * w1 + (0.5 * v0 + 0.5 * v1)[:, ::-1]
        add("classical part, flip averaging (2x flow cost)", u8(0.5 * flip), gt)
        add("DIS medium (baseline)", dis_interpolate(s.frame0, s.frame1, 0.5,
                                                     DISConfig("medium")), gt)
        for block, label in ((8, "1/8"), (4, "1/4"), (2, "1/2"), (1, "full")):
            add(f"bound: best mask at {label} resolution", oracle_blend(w0, w1, gt, block), gt)
    result = {"set": Path(args.data).name, "n": len(samples),
              "psnr": {k: float(np.mean(v)) for k, v in rows.items()}}
    width = max(len(k) for k in rows)
    lines = [f"{result['set']} ({len(samples)} samples), mean RGB PSNR"]
    lines += [f"  {k:<{width}}  {v:6.2f}" for k, v in result["psnr"].items()]
    sys.stdout.write("\n".join(lines) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
