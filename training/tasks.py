"""Build the training task (model, data, loss) for ``m23 train interp`` and ``m23 train sr``."""

from __future__ import annotations

import logging
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor, nn
from torch.utils.data import ConcatDataset, Dataset

from models.classical import DISConfig
from models.registry import get_model, get_spec
from training.data import (
    DataError,
    FrameSequence,
    InterpDataset,
    SyntheticShiftDataset,
    discover_sequences,
    interp_item,
    interp_windows,
)
from training.loop import Task, TrainConfig
from training.losses import interp_loss

__all__ = ["build_interp_task", "classical_config", "default_frames", "interp_forward"]

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def classical_config(arch: str) -> DISConfig | None:
    """The classical-flow settings a registered interpolation model expects (None: neural)."""
    spec = get_spec(arch)
    c = spec.extra.get("classical")
    return None if c is None else DISConfig(**c)


def interp_forward(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    """Run an interpolation model on a batch dict (img0, img1, t[, flow01, flow10])."""
    return model(batch["img0"], batch["img1"], batch["t"], batch.get("flow01"),
                 batch.get("flow10"))


def default_frames(max_frames: int = 24) -> list[np.ndarray]:
    """Frames of the shipped sample video (for the built-in synthetic data set)."""
    from training.data import _decode_video

    video = ASSETS / "sample.mp4"
    if not video.is_file():
        raise DataError(f"the shipped sample video is missing: {video}")
    return _decode_video(video, max_frames)[::4]


def _is_val(seq: FrameSequence, every: int) -> bool:
    return seq.kind in ("septuplet", "triplet") and zlib.crc32(seq.name.encode()) % every == 0


def _val_items(seqs: list[FrameSequence], dis: DISConfig | None, limit: int,
               max_side: int = 448) -> list[dict[str, Tensor]]:
    items = []
    for seq in seqs[:limit]:
        frames = seq.load()
        mid = len(frames) // 2
        f0, ft, f1 = frames[mid - 1], frames[mid], frames[mid + 1]
        h, w = f0.shape[:2]
        ch, cw = min(h, max_side), min(w, max_side)
        y, x = (h - ch) // 2, (w - cw) // 2
        f0, ft, f1 = (np.ascontiguousarray(f[y:y + ch, x:x + cw]) for f in (f0, ft, f1))
        items.append(interp_item(f0, ft, f1, 0.5, dis))
    return items


def build_interp_task(cfg: TrainConfig) -> Task:
    """The interpolation task: clips from ``cfg.data`` (or the built-in synthetic set).

    About one clip in twelve among triplets and septuplets (chosen by a hash of its name, so
    stable across runs) is held out for validation.
    """
    spec = get_spec(cfg.model)
    if spec.kind != "interp":
        raise ValueError(f"model {cfg.model!r} is a {spec.kind} model, not an interpolation model")
    dis = classical_config(cfg.model)
    model: nn.Module = get_model(cfg.model)
    length = cfg.steps * cfg.batch + cfg.batch
    if not cfg.data:
        frames = default_frames()
        crop = min(cfg.crop, 128)
        train_set: Dataset = SyntheticShiftDataset(frames, crop=crop, max_shift=16, dis=dis,
                                                   length=length, seed=cfg.seed)
        val_ds = SyntheticShiftDataset(frames, crop=crop, max_shift=16, dis=dis, length=8,
                                       seed=cfg.seed + 99991)
        val_items = [val_ds[i] for i in range(len(val_ds))]
        log.info("no --data: training on the built-in synthetic set (%d frames)", len(frames))
        return Task(cfg.model, model, train_set, val_items, interp_forward, _interp_loss(cfg))
    seqs: list[FrameSequence] = []
    for d in cfg.data:
        seqs.extend(discover_sequences(d))
    small = [s for s in seqs if min(s.load()[0].shape[:2]) < cfg.crop]
    for s in small:
        log.warning("skipping %s: frames %s are smaller than --crop %d", s.name,
                    s.load()[0].shape[:2], cfg.crop)
    seqs = [s for s in seqs if all(s is not x for x in small)]
    if not seqs:
        raise DataError(f"every clip is smaller than --crop {cfg.crop}")
    every = int(cfg.extra.get("val_every_nth", 12))
    train_seqs = [s for s in seqs if not _is_val(s, every)]
    val_seqs = [s for s in seqs if _is_val(s, every)]
    windows = interp_windows(train_seqs, gaps=tuple(cfg.extra.get("gaps", (2, 4))),
                             n_frames=[_count(s) for s in train_seqs])
    log.info("%d clips for training (%d targets), %d held out for validation",
             len(train_seqs), len(windows), len(val_seqs))
    sets: list[Dataset] = [InterpDataset(train_seqs, windows, crop=cfg.crop, dis=dis,
                                         length=length, seed=cfg.seed,
                                         downscale=float(cfg.extra.get("downscale", 0.0)))]
    train_set = sets[0] if len(sets) == 1 else ConcatDataset(sets)
    val_items = _val_items(val_seqs, dis, int(cfg.extra.get("val_limit", 12)))
    return Task(cfg.model, model, train_set, val_items, interp_forward, _interp_loss(cfg))


def _count(seq: FrameSequence) -> int:
    if seq.video is not None:
        return len(seq.load(max_frames=None))
    return len(seq.paths)


def _interp_loss(cfg: TrainConfig) -> Any:
    def loss(pred: Tensor, gt: Tensor) -> Tensor:
        return interp_loss(pred, gt, cfg.grad_weight, cfg.census_weight, cfg.loss)

    return loss
