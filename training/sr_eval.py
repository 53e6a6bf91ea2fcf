"""Evaluation of super-resolution against classical upscalers (``m23 eval sr``).

The protocol of the SR literature, so numbers compare with published tables: the HR image is
cropped to a multiple of the scale, the LR input is its MATLAB-style antialiased bicubic
downscale rounded to uint8, and PSNR and SSIM are computed on the luma (ITU-R BT.601 Y,
16..235, unrounded) with ``scale`` pixels shaved from each border. With these choices bicubic
gives 33.68 dB on Set5 x2 and 28.43 dB on x4 (published: 33.66 / 28.42; the published figures
round Y to integers first, which gives 33.65 / 28.42 here).
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from training.data import IMAGE_EXTS, DataError, read_image
from training.metrics import psnr_u8, rgb_to_y, ssim_u8
from training.resize import imresize_u8

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "SRSample",
    "TorchUpscaler",
    "Upscale",
    "baseline_sr_methods",
    "evaluate_sr",
    "format_sr_table",
    "load_sr_samples",
    "load_sr_upscaler",
    "shaved_y",
]

log = logging.getLogger(__name__)

# (h, w, 3) uint8 RGB -> (s*h, s*w, 3) uint8 RGB.
Upscale = Callable[[np.ndarray], np.ndarray]


@dataclass
class SRSample:
    """One test image: the HR ground truth (cropped to a multiple of the scale) and its LR input.

    Attributes:
        name: file name relative to the data folder.
        hr: (s*h, s*w, 3) uint8 RGB.
        lr: (h, w, 3) uint8 RGB, MATLAB-style bicubic downscale of ``hr``.
    """

    name: str
    hr: np.ndarray
    lr: np.ndarray


def _image_files(root: Path) -> list[Path]:
    hr_dirs = sorted(p for p in root.rglob("HR") if p.is_dir())
    if root.name == "HR":
        hr_dirs.insert(0, root)
    folders = hr_dirs or [root]
    return [p for d in folders for p in sorted(d.iterdir())
            if p.is_file() and p.suffix.lower() in IMAGE_EXTS]


def load_sr_samples(root: str | Path, scale: int) -> list[SRSample]:
    """Read the HR images of a test set and make their LR inputs.

    Reads ``<root>/**/HR/*.png`` (the ``sr/<set>/HR`` layout) when there is an ``HR`` folder,
    else the images directly in ``root``. Grayscale images become three equal channels, an
    alpha channel is dropped (both logged at debug level, by the decoder).

    Args:
        root: a test-set folder (or its ``HR`` folder, or any folder of images).
        scale: 2 or 4.

    Raises:
        DataError: bad scale, missing folder, no images, an image that cannot be decoded
            (corrupt file), or one too small for the scale (fewer than ``3 * scale`` pixels on
            a side).
    """
    if scale not in (2, 4):
        raise DataError(f"--scale must be 2 or 4, got {scale}")
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder not found: {root}")
    files = _image_files(root)
    if not files:
        raise DataError(f"no images in {root} (expected <set>/HR/*.png or a folder of images)")
    samples = []
    for p in files:
        try:
            img = read_image(p)
        except DataError as exc:
            raise DataError(f"{exc} (corrupt or not an image file)") from None
        h, w = img.shape[:2]
        if min(h, w) < 3 * scale:
            raise DataError(f"{p} is {w}x{h}: too small for x{scale} evaluation (needs at least "
                            f"{3 * scale} px on each side)")
        hr = np.ascontiguousarray(img[: h - h % scale, : w - w % scale])
        # The clean LR of training.sr_data.make_lr: MATLAB bicubic, rounded to uint8.
        samples.append(SRSample(str(p.relative_to(root)), hr, imresize_u8(hr, 1.0 / scale)))
    return samples


def _bicubic(scale: int) -> Upscale:
    def run(lr: np.ndarray) -> np.ndarray:
        return imresize_u8(lr, scale)

    return run


def _cv2(scale: int, interpolation: int) -> Upscale:
    import cv2

    def run(lr: np.ndarray) -> np.ndarray:
        h, w = lr.shape[:2]
        return cv2.resize(lr, (w * scale, h * scale), interpolation=interpolation)

    return run


def baseline_sr_methods(scale: int) -> dict[str, Upscale]:
    """The classical upscalers: bicubic (MATLAB ``imresize``, the literature's reference),
    bilinear and Lanczos (OpenCV ``INTER_LINEAR`` / ``INTER_LANCZOS4``)."""
    import cv2

    return {"bicubic": _bicubic(scale), "bilinear": _cv2(scale, cv2.INTER_LINEAR),
            "lanczos": _cv2(scale, cv2.INTER_LANCZOS4)}


def shaved_y(img: np.ndarray, shave: int) -> np.ndarray:
    """BT.601 luma (float64, 16..235) of an (H, W, 3) RGB image with ``shave`` px cut per side."""
    y = rgb_to_y(img)
    return y[shave:-shave, shave:-shave] if shave > 0 else y


def evaluate_sr(
    samples: Sequence[SRSample],
    methods: dict[str, Upscale],
    scale: int,
    set_name: str = "",
    warmup: bool = True,
) -> dict[str, Any]:
    """Score every method on every sample.

    Args:
        samples: from :func:`load_sr_samples` with the same ``scale``.
        methods: name -> upscaler of (h, w, 3) uint8 to (s*h, s*w, 3) uint8.
        scale: the upscaling factor (also the border shaved before scoring).
        set_name: recorded in the report.
        warmup: run each method once on the first sample before timing.

    Returns:
        ``{"set", "scale", "n", "results": {method: {"psnr", "ssim", "ms"}}}``: mean Y-channel
        PSNR (dB) and SSIM, median milliseconds per image.

    Raises:
        ValueError: no samples, or a method returns the wrong shape or dtype.
    """
    if not samples:
        raise ValueError("no samples to evaluate")
    results: dict[str, dict[str, float]] = {}
    for name, fn in methods.items():
        if warmup:
            fn(samples[0].lr)
        ps, ss, ms = [], [], []
        for s in samples:
            t0 = time.perf_counter()
            pred = fn(s.lr)
            ms.append((time.perf_counter() - t0) * 1000.0)
            if pred.shape != s.hr.shape or pred.dtype != np.uint8:
                raise ValueError(f"{name} returned {pred.dtype} {pred.shape} for {s.name}; "
                                 f"expected uint8 {s.hr.shape}")
            yp, yt = shaved_y(pred, scale), shaved_y(s.hr, scale)
            ps.append(psnr_u8(yp, yt))
            ss.append(ssim_u8(yp, yt))
        results[name] = {"psnr": float(np.mean(ps)), "ssim": float(np.mean(ss)),
                         "ms": float(statistics.median(ms))}
        log.info("%s x%d %s: %.2f dB", set_name, scale, name, results[name]["psnr"])
    return {"set": set_name, "scale": scale, "n": len(samples), "results": results}


def format_sr_table(report: dict[str, Any]) -> str:
    """A plain-text table of an :func:`evaluate_sr` report."""
    lines = [f"set: {report['set']}  scale: x{report['scale']}  images: {report['n']}  "
             "(Y channel, BT.601, scale px shaved)",
             f"{'method':<26}{'PSNR dB':>9}{'SSIM':>8}{'ms/image':>10}"]
    for name, r in report["results"].items():
        lines.append(f"{name:<26}{r['psnr']:>9.2f}{r['ssim']:>8.4f}{r['ms']:>10.1f}")
    return "\n".join(lines)


class TorchUpscaler:
    """Callable (h, w, 3) uint8 RGB -> (s*h, s*w, 3) uint8 RGB running a PyTorch SR model.

    Args:
        model: a SuperResolutionNet (anything with ``scale_factor`` and
            ``(B, 3, h, w) -> (B, 3, s*h, s*w)`` in [0, 1]).
        device: where to run it.
    """

    def __init__(self, model: nn.Module, device: str | torch.device = "cpu") -> None:
        import torch

        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.scale = int(getattr(model, "scale_factor", 0))

    def __call__(self, img: np.ndarray) -> np.ndarray:
        import torch

        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8 or img.size == 0:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {img.dtype} "
                             f"{img.shape}")
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(img)).to(self.device)
            x = x.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
            out = self.model(x)[0].mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
            return np.ascontiguousarray(out.permute(1, 2, 0).cpu().numpy())


def load_sr_upscaler(checkpoint: str | Path, arch: str | None = None,
                     scale: int | None = None) -> tuple[str, TorchUpscaler]:
    """Load SR weights (architecture from ``arch`` or the file's metadata) and wrap them.

    Args:
        checkpoint: a ``.safetensors`` file or a checkpoint folder.
        arch: the registered architecture, when the file does not name it.
        scale: if given, the model must upscale by this factor.

    Raises:
        CheckpointError: missing/damaged file, unknown, non-SR or mismatched architecture,
            another scale, NaN weights.
    """
    from models.registry import get_model, get_spec
    from training.checkpoint import CheckpointError, load_weights, weights_path

    path = weights_path(checkpoint)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if arch is None:
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                arch = (f.metadata() or {}).get("arch")
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
        if arch is None:
            raise CheckpointError(f"{path} does not name its architecture; pass --model")
    try:
        spec = get_spec(arch)
    except KeyError as exc:
        raise CheckpointError(str(exc.args[0])) from None
    if spec.kind != "sr":
        raise CheckpointError(f"{path} holds a {spec.kind} model ({arch}), not super-resolution")
    if scale is not None and spec.scale != scale:
        raise CheckpointError(f"{path} holds an x{spec.scale} model ({arch}), not x{scale}")
    model = get_model(arch)
    load_weights(path, model, arch)
    return arch, TorchUpscaler(model)
