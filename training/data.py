"""Data sets for frame interpolation and super-resolution training.

Sources are folders of triplets (``<sample>/im1.png..im3.png``), septuplets
(``<sample>/im1.png..im7.png``), folders of consecutive frames, and video files (decoded with
PyAV). Images are decoded once and kept in memory as uint8 RGB.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from models.classical import DISConfig, dis_flows

__all__ = [
    "DataError",
    "FrameSequence",
    "InterpWindow",
    "discover_sequences",
    "interp_windows",
    "read_image",
    "InterpDataset",
    "SyntheticShiftDataset",
    "to_tensor",
    "interp_item",
]

log = logging.getLogger(__name__)

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
VIDEO_EXTS = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v")


class DataError(ValueError):
    """A data folder or file that cannot be used, with a message for the user."""


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB.

    Raises:
        DataError: if the file is missing or cannot be decoded.
    """
    import cv2

    p = Path(path)
    if not p.is_file():
        raise DataError(f"image not found: {p}")
    data = np.fromfile(str(p), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise DataError(f"cannot decode image: {p}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


@dataclass
class FrameSequence:
    """Consecutive frames of one clip: image paths, or a video file decoded on first use."""

    name: str
    paths: list[Path]
    video: Path | None = None
    kind: str = "frames"  # "triplet", "septuplet", "frames" or "video"
    frames: list[np.ndarray] | None = None

    def load(self, max_frames: int | None = None) -> list[np.ndarray]:
        """Decode (once) and return the frames as (H, W, 3) uint8 RGB arrays.

        Raises:
            DataError: if a frame cannot be read or the sizes differ.
        """
        if self.frames is None:
            if self.video is not None:
                frames = _decode_video(self.video, max_frames)
            else:
                frames = [read_image(p) for p in self.paths]
            shapes = {f.shape for f in frames}
            if len(shapes) > 1:
                raise DataError(f"frames of {self.name} differ in size: {sorted(shapes)}")
            self.frames = frames
        return self.frames

    def __len__(self) -> int:
        return len(self.frames) if self.frames is not None else len(self.paths)


def _decode_video(path: Path, max_frames: int | None) -> list[np.ndarray]:
    import av

    frames: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(f"no video stream in {path}")
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except av.FFmpegError as exc:
        if not frames:
            raise DataError(f"cannot decode video {path}: {exc}") from exc
        log.warning("video %s is damaged after %d frames; using those", path, len(frames))
    if len(frames) < 3:
        raise DataError(f"video {path} has fewer than 3 decodable frames")
    return frames


def _numbered(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file())


def discover_sequences(root: str | Path) -> list[FrameSequence]:
    """Find the clips under ``root``.

    A folder holding ``im1..im3`` is a triplet, ``im1..im7`` a septuplet, any other folder
    with at least three images a sequence of consecutive frames (sorted by name); video files
    are clips too. Searches ``root`` and its sub-folders.

    Raises:
        DataError: if ``root`` does not exist or holds no usable clip.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(f"data path not found: {root}")
    found: list[FrameSequence] = []
    if root.is_file():
        if root.suffix.lower() not in VIDEO_EXTS:
            raise DataError(f"not a video or a folder: {root}")
        return [FrameSequence(root.stem, [], video=root, kind="video")]
    folders = [root, *sorted(p for p in root.rglob("*") if p.is_dir())]
    for folder in folders:
        names = {p.name for p in folder.iterdir() if p.is_file()}
        if {"im1.png", "im2.png", "im3.png"} <= names:
            n = 7 if {f"im{i}.png" for i in range(1, 8)} <= names else 3
            kind = "septuplet" if n == 7 else "triplet"
            paths = [folder / f"im{i}.png" for i in range(1, n + 1)]
            found.append(FrameSequence(str(folder.relative_to(root)), paths, kind=kind))
            continue
        images = _numbered(folder)
        if len(images) >= 3:
            found.append(FrameSequence(str(folder.relative_to(root)), images, kind="frames"))
        for p in sorted(folder.iterdir()):
            if p.is_file() and p.suffix.lower() in VIDEO_EXTS:
                found.append(FrameSequence(p.stem, [], video=p, kind="video"))
    if not found:
        raise DataError(
            f"no samples in {root}: expected <sample>/im1.png.. folders, image sequences or videos"
        )
    return found


@dataclass(frozen=True)
class InterpWindow:
    """One training target: frames ``i0`` and ``i1`` of a clip and the true frame ``it``."""

    seq: int
    i0: int
    it: int
    i1: int

    @property
    def t(self) -> float:
        return (self.it - self.i0) / (self.i1 - self.i0)


def interp_windows(
    seqs: Sequence[FrameSequence],
    gaps: Sequence[int] = (2, 4),
    n_frames: Sequence[int] | None = None,
) -> list[InterpWindow]:
    """Every (i0, it, i1) target in the clips: triplets give t = 1/2; longer clips give all
    windows of the given gaps with every intermediate frame (t = k/gap)."""
    out: list[InterpWindow] = []
    for s, seq in enumerate(seqs):
        n = n_frames[s] if n_frames is not None else len(seq)
        if seq.kind == "triplet":
            out.append(InterpWindow(s, 0, 1, 2))
            continue
        for gap in gaps:
            for i0 in range(0, n - gap):
                for k in range(1, gap):
                    out.append(InterpWindow(s, i0, i0 + k, i0 + gap))
    return out


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255.0)


def interp_item(f0: np.ndarray, ft: np.ndarray, f1: np.ndarray, t: float,
                dis: DISConfig | None) -> dict[str, torch.Tensor]:
    """One training/validation item from uint8 frames: tensors ``img0``, ``img1``, ``gt``
    (3, H, W) in [0, 1], ``t`` (1,), and with ``dis`` the classical ``flow01``, ``flow10``
    (2, H, W) in pixels."""
    item = {"img0": to_tensor(f0), "img1": to_tensor(f1), "gt": to_tensor(ft),
            "t": torch.tensor([t], dtype=torch.float32)}
    if dis is not None:
        a, b = dis_flows(f0, f1, dis)
        item["flow01"] = torch.from_numpy(a).permute(2, 0, 1).contiguous()
        item["flow10"] = torch.from_numpy(b).permute(2, 0, 1).contiguous()
    return item


def _augment(
    frames: list[np.ndarray], rng: random.Random, crop: int
) -> list[np.ndarray]:
    h, w = frames[0].shape[:2]
    ch, cw = min(crop, h), min(crop, w)
    y = rng.randint(0, h - ch)
    x = rng.randint(0, w - cw)
    out = [f[y : y + ch, x : x + cw] for f in frames]
    if rng.random() < 0.5:
        out = [f[:, ::-1] for f in out]
    if rng.random() < 0.5:
        out = [f[::-1] for f in out]
    if ch == cw and rng.random() < 0.5:
        out = [np.rot90(f) for f in out]
    return [np.ascontiguousarray(f) for f in out]


class InterpDataset(Dataset):
    """Random crops of interpolation targets, with classical flows for the hybrid models.

    Each item is a dict of float32 tensors: ``img0``, ``img1``, ``gt`` (3, C, C) in [0, 1],
    ``t`` (1,) and, when ``dis`` is given, ``flow01``, ``flow10`` (2, C, C) in pixels.

    Args:
        seqs: the clips.
        windows: the targets to draw from.
        crop: square crop size (clipped to the frame size).
        dis: classical flow settings, or None for the neural models.
        length: number of items per epoch (items are random draws).
        seed: base seed; item ``i`` is reproducible from (seed, i).
        augment: random crop position, flips, rotation and temporal reversal; off gives the
            centre crop of the window (for validation).
        downscale: with augmentation, the probability of halving the frames (area filter)
            before the crop, where they stay at least ``crop`` pixels high and wide: smaller
            motion and softer detail, as in low-resolution video.
    """

    def __init__(
        self,
        seqs: list[FrameSequence],
        windows: list[InterpWindow],
        crop: int = 192,
        dis: DISConfig | None = None,
        length: int = 10_000,
        seed: int = 0,
        augment: bool = True,
        downscale: float = 0.0,
    ) -> None:
        if not 0.0 <= downscale <= 1.0:
            raise ValueError(f"downscale must be a probability in [0, 1], got {downscale}")
        if not windows:
            raise DataError("no interpolation targets in the data")
        self.seqs = seqs
        self.windows = windows
        self.crop = crop
        self.dis = dis
        self.length = length if augment else len(windows)
        self.seed = seed
        self.augment = augment
        self.downscale = downscale

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = random.Random(self.seed * 1_000_003 + index)
        pick = rng.randrange(len(self.windows)) if self.augment else index
        win = self.windows[pick]
        frames = self.seqs[win.seq].load()
        f0, ft, f1 = frames[win.i0], frames[win.it], frames[win.i1]
        t = win.t
        if self.augment:
            if rng.random() < self.downscale and min(f0.shape[:2]) >= 2 * self.crop:
                import cv2

                size = (f0.shape[1] // 2, f0.shape[0] // 2)
                f0, ft, f1 = (cv2.resize(f, size, interpolation=cv2.INTER_AREA)
                              for f in (f0, ft, f1))
            f0, ft, f1 = _augment([f0, ft, f1], rng, self.crop)
            if rng.random() < 0.5:
                f0, f1, t = f1, f0, 1.0 - t
        return interp_item(f0, ft, f1, t, self.dis)


class SyntheticShiftDataset(Dataset):
    """Synthetic motion with exact ground truth: a crop moving in a straight line.

    From one source image a window moves by ``(dx, dy)`` pixels between frame 0 and frame 1;
    the frame at time t is the window at t*(dx, dy) (integer steps, so exact).

    Args:
        images: (H, W, 3) uint8 source images, larger than ``crop`` + 2 * ``max_shift``.
        crop: output size.
        max_shift: the largest motion between frame 0 and frame 1, in pixels (kept even so the
            middle frame is exact).
        dis: classical flow settings, or None.
        length: items per epoch.
        seed: base seed.
    """

    def __init__(
        self,
        images: list[np.ndarray],
        crop: int = 128,
        max_shift: int = 16,
        dis: DISConfig | None = None,
        length: int = 1000,
        seed: int = 0,
    ) -> None:
        if not images:
            raise DataError("no images for the synthetic data set")
        need = crop + 2 * max_shift
        small = [im.shape for im in images if min(im.shape[:2]) < need]
        if small:
            raise DataError(f"images must be at least {need} px on each side; got {small[0]}")
        self.images = images
        self.crop = crop
        self.max_shift = max_shift
        self.dis = dis
        self.length = length
        self.seed = seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = random.Random(self.seed * 1_000_003 + index)
        img = self.images[rng.randrange(len(self.images))]
        h, w = img.shape[:2]
        half = self.max_shift // 2
        dx, dy = 2 * rng.randint(-half, half), 2 * rng.randint(-half, half)
        m = self.max_shift
        y = rng.randint(m, h - self.crop - m)
        x = rng.randint(m, w - self.crop - m)

        def win(fx: int, fy: int) -> np.ndarray:
            c = self.crop
            return np.ascontiguousarray(img[y + fy : y + fy + c, x + fx : x + fx + c])

        f0, ft, f1 = win(0, 0), win(dx // 2, dy // 2), win(dx, dy)
        return interp_item(f0, ft, f1, 0.5, self.dis)


def rational_t(i0: int, it: int, i1: int) -> Fraction:
    """The exact time of frame ``it`` between ``i0`` and ``i1``."""
    return Fraction(it - i0, i1 - i0)
