"""Super-resolution training data: HR images and video frames, LR made on the fly.

Any high-resolution source works: folders of images (searched recursively; Vimeo-90K and DAVIS
frames, DIV2K, ...) and video files (decoded with PyAV, every ``video_step``-th frame kept).
Each item is a random HR crop, flipped and rotated, and its low-resolution version made the way
the benchmarks make theirs: an antialiased bicubic downscale with MATLAB ``imresize``
semantics, rounded to uint8. Optional mild degradations (Gaussian blur, Gaussian noise, JPEG
compression, each with a probability) make the model hold up on real, compressed video.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from training.data import IMAGE_EXTS, VIDEO_EXTS, DataError, read_image, to_tensor
from training.resize import imresize

__all__ = [
    "Degradations",
    "HRImage",
    "SRDataset",
    "collect_hr_images",
    "degrade",
    "make_lr",
]

log = logging.getLogger(__name__)


class HRImage(NamedTuple):
    """One high-resolution source image: a stable name and (H, W, 3) uint8 RGB pixels."""

    name: str
    image: np.ndarray


@dataclass(frozen=True)
class Degradations:
    """Mild degradations of the LR input, each applied with its own probability.

    Attributes:
        blur_prob: chance of a Gaussian blur of the LR image.
        blur_sigma: (min, max) blur sigma in LR pixels.
        noise_prob: chance of additive Gaussian noise.
        noise_sigma: (min, max) noise standard deviation on the 0..255 scale.
        jpeg_prob: chance of a JPEG round trip (OpenCV, 4:2:0 chroma as in video).
        jpeg_quality: (min, max) JPEG quality.
    """

    blur_prob: float = 0.1
    blur_sigma: tuple[float, float] = (0.3, 1.0)
    noise_prob: float = 0.1
    noise_sigma: tuple[float, float] = (0.5, 2.0)
    jpeg_prob: float = 0.1
    jpeg_quality: tuple[int, int] = (60, 95)

    def __post_init__(self) -> None:
        for name in ("blur_prob", "noise_prob", "jpeg_prob"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {p}")
        for name in ("blur_sigma", "noise_sigma", "jpeg_quality"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name} must be (min, max) with 0 <= min <= max, got {lo, hi}")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ValueError(f"jpeg_quality must lie in 1..100, got {self.jpeg_quality}")

    @classmethod
    def none(cls) -> Degradations:
        """Clean inputs only (the benchmark setting)."""
        return cls(blur_prob=0.0, noise_prob=0.0, jpeg_prob=0.0)

    def scaled(self, factor: float) -> Degradations:
        """The same degradations with every probability multiplied by ``factor`` (capped at 1)."""
        return Degradations(
            min(1.0, self.blur_prob * factor), self.blur_sigma,
            min(1.0, self.noise_prob * factor), self.noise_sigma,
            min(1.0, self.jpeg_prob * factor), self.jpeg_quality)


def degrade(lr: np.ndarray, rng: random.Random, deg: Degradations) -> np.ndarray:
    """Apply the degradations drawn from ``rng`` to a low-resolution image.

    Args:
        lr: (h, w, 3) float64 on a 0..255 scale (the unrounded bicubic downscale).
        rng: the item's random source.
        deg: what to apply and how likely.

    Returns:
        (h, w, 3) uint8 RGB.
    """
    import cv2

    x = lr
    if rng.random() < deg.blur_prob:
        sigma = rng.uniform(*deg.blur_sigma)
        if sigma > 0:
            x = cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    if rng.random() < deg.noise_prob:
        sigma = rng.uniform(*deg.noise_sigma)
        noise = np.random.default_rng(rng.getrandbits(63)).standard_normal(x.shape) * sigma
        x = x + noise
    out = np.clip(np.round(x), 0, 255).astype(np.uint8)
    if rng.random() < deg.jpeg_prob:
        quality = rng.randint(*deg.jpeg_quality)
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(out[..., ::-1]),
                               [int(cv2.IMWRITE_JPEG_QUALITY), quality])
        if ok:
            dec = cv2.imdecode(buf, cv2.IMREAD_COLOR)
            if dec is not None:
                out = np.ascontiguousarray(dec[..., ::-1])
    return out


def make_lr(hr: np.ndarray, scale: int, rng: random.Random | None = None,
            deg: Degradations | None = None) -> np.ndarray:
    """The low-resolution input of an HR image, as the benchmarks make it (plus degradations).

    Args:
        hr: (H, W, 3) uint8 RGB with H and W multiples of ``scale``.
        scale: 2 or 4.
        rng: random source for the degradations (needed when ``deg`` is given).
        deg: optional degradations; None gives the clean benchmark input.

    Returns:
        (H / scale, W / scale, 3) uint8 RGB: MATLAB-style antialiased bicubic downscale, rounded.
    """
    h, w = hr.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f"HR size {h}x{w} is not a multiple of the scale {scale}")
    lr = imresize(hr, 1.0 / scale)
    if deg is None or rng is None:
        return np.clip(np.round(lr), 0, 255).astype(np.uint8)
    return degrade(lr, rng, deg)


def _folder_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)


def _video_frames(path: Path, step: int, max_frames: int) -> list[np.ndarray]:
    from training.data import _decode_video

    return _decode_video(path, max_frames)[::step]


def collect_hr_images(
    sources: Sequence[str | Path],
    *,
    min_size: int = 1,
    image_step: int = 1,
    video_step: int = 5,
    max_video_frames: int = 600,
) -> list[HRImage]:
    """Decode every HR image under the given sources into memory.

    Args:
        sources: image files, video files and folders (searched recursively for both).
        min_size: images with a side below this are skipped (logged).
        image_step: keep every n-th image of each folder, by name (e.g. 3 for Vimeo
            septuplets, whose neighbouring frames are nearly the same).
        video_step: keep every n-th decoded frame of each video.
        max_video_frames: frames decoded per video at most (before ``video_step``).

    Returns:
        The images with names like ``<folder>/<file>`` or ``<video>#<frame>``; unreadable files
        are skipped with a warning.

    Raises:
        DataError: a source that does not exist, or no usable image at all.
    """
    if image_step < 1 or video_step < 1:
        raise ValueError(f"image_step and video_step must be >= 1, got {image_step}, {video_step}")
    found: list[HRImage] = []
    skipped_small = 0

    def add(name: str, img: np.ndarray) -> None:
        nonlocal skipped_small
        if min(img.shape[:2]) < min_size:
            skipped_small += 1
            return
        found.append(HRImage(name, img))

    def add_video(p: Path, name: str) -> None:
        try:
            frames = _video_frames(p, video_step, max_video_frames)
        except DataError as exc:
            log.warning("skipping %s", exc)
            return
        for i, f in enumerate(frames):
            add(f"{name}#{i * video_step}", f)

    for src in sources:
        root = Path(src)
        if not root.exists():
            raise DataError(f"data path not found: {root}")
        if root.is_file():
            if root.suffix.lower() in VIDEO_EXTS:
                add_video(root, root.name)
            elif root.suffix.lower() in IMAGE_EXTS:
                add(root.name, read_image(root))
            else:
                raise DataError(f"not an image, a video or a folder: {root}")
            continue
        for folder in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
            rel = folder.relative_to(root).as_posix()
            prefix = f"{root.name}/{rel}" if rel != "." else root.name
            for p in _folder_images(folder)[::image_step]:
                try:
                    add(f"{prefix}/{p.name}", read_image(p))
                except DataError as exc:
                    log.warning("skipping %s", exc)
            for p in sorted(folder.iterdir()):
                if p.is_file() and p.suffix.lower() in VIDEO_EXTS:
                    add_video(p, f"{prefix}/{p.name}")
    if skipped_small:
        log.warning("skipped %d images smaller than %d px", skipped_small, min_size)
    if not found:
        raise DataError(
            f"no usable HR images (at least {min_size} px on each side) in "
            f"{', '.join(str(s) for s in sources)}")
    return found


class SRDataset(Dataset):
    """Random HR crops and their LR versions for x2 / x4 training.

    Each item is ``{"lr": (3, p, p), "gt": (3, s*p, s*p)}`` float32 in [0, 1] with ``p`` =
    ``lr_patch`` and ``s`` = ``scale``: a random crop of a random image, flipped and rotated by
    multiples of 90 degrees, downscaled with :func:`make_lr` (MATLAB bicubic, optional
    degradations). Item ``i`` depends only on ``(seed, i)``.

    Args:
        images: (H, W, 3) uint8 RGB sources, each at least ``scale * lr_patch`` on both sides.
        scale: 2 or 4.
        lr_patch: LR crop size in pixels.
        length: items per epoch (every item is a fresh random draw).
        seed: base seed.
        degradations: None for clean inputs.
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        scale: int,
        lr_patch: int = 48,
        length: int = 10_000,
        seed: int = 0,
        degradations: Degradations | None = None,
    ) -> None:
        if scale not in (2, 4):
            raise ValueError(f"scale must be 2 or 4, got {scale}")
        if lr_patch < 1:
            raise ValueError(f"lr_patch must be positive, got {lr_patch}")
        if not images:
            raise DataError("no images for the super-resolution data set")
        crop = scale * lr_patch
        small = [im.shape for im in images if min(im.shape[:2]) < crop]
        if small:
            raise DataError(f"images must be at least {crop} px on each side (scale {scale} x "
                            f"LR patch {lr_patch}); got {small[0][:2]}")
        self.images = list(images)
        self.scale = scale
        self.lr_patch = lr_patch
        self.crop = crop
        self.length = length
        self.seed = seed
        self.degradations = degradations

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = random.Random(self.seed * 1_000_003 + index)
        img = self.images[rng.randrange(len(self.images))]
        h, w = img.shape[:2]
        c = self.crop
        y, x = rng.randint(0, h - c), rng.randint(0, w - c)
        hr = img[y:y + c, x:x + c]
        if rng.random() < 0.5:
            hr = hr[:, ::-1]
        if rng.random() < 0.5:
            hr = hr[::-1]
        if rng.random() < 0.5:
            hr = np.rot90(hr)
        hr = np.ascontiguousarray(hr)
        lr = make_lr(hr, self.scale, rng, self.degradations)
        return {"lr": to_tensor(lr), "gt": to_tensor(hr)}
