"""Build the super-resolution training task for ``m23 train sr``."""

from __future__ import annotations

import logging
import zlib
from typing import Any

import numpy as np
from torch import Tensor, nn
from torch.utils.data import Dataset

from models.registry import get_model, get_spec
from training.data import DataError, to_tensor
from training.loop import Task, TrainConfig
from training.losses import charbonnier, gradient_loss
from training.sr_data import Degradations, HRImage, SRDataset, collect_hr_images, make_lr

__all__ = ["build_sr_task", "sr_forward", "sr_loss", "sr_val_items", "SR_GRAD_WEIGHT"]

log = logging.getLogger(__name__)

SR_GRAD_WEIGHT = 0.1
"""Default weight of the gradient term (``cfg.extra["sr_grad_weight"]`` overrides it)."""


def sr_forward(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    """Run an SR model on a batch dict: ``lr`` (B, 3, h, w) -> (B, 3, s*h, s*w) in [0, 1]."""
    return model(batch["lr"])


def sr_loss(grad_weight: float = SR_GRAD_WEIGHT) -> Any:
    """Charbonnier plus ``grad_weight`` times the L1 distance of image gradients."""

    def loss(pred: Tensor, gt: Tensor) -> Tensor:
        value = charbonnier(pred, gt)
        if grad_weight > 0:
            value = value + grad_weight * gradient_loss(pred, gt)
        return value

    return loss


def _centre(img: np.ndarray, max_side: int, scale: int) -> np.ndarray:
    h, w = img.shape[:2]
    ch = min(h, max_side) // scale * scale
    cw = min(w, max_side) // scale * scale
    y, x = (h - ch) // 2, (w - cw) // 2
    return np.ascontiguousarray(img[y:y + ch, x:x + cw])


def sr_val_items(images: list[np.ndarray], scale: int, max_side: int = 384
                 ) -> list[dict[str, Tensor]]:
    """Validation items of whole images (centre crops of at most ``max_side``): HR cropped to a
    multiple of ``scale``, LR by the clean MATLAB-style bicubic downscale.

    Returns:
        Items ``{"lr": (3, h, w), "gt": (3, s*h, s*w)}`` float32 in [0, 1].
    """
    items = []
    for img in images:
        hr = _centre(img, max_side, scale)
        if min(hr.shape[:2]) < scale:
            continue
        items.append({"lr": to_tensor(make_lr(hr, scale)), "gt": to_tensor(hr)})
    return items


def _is_val(img: HRImage, every: int) -> bool:
    return zlib.crc32(img.name.encode()) % every == 0


def _degradations(cfg: TrainConfig) -> Degradations | None:
    factor = float(cfg.extra.get("degrade", 1.0))
    if factor < 0:
        raise ValueError(f"degrade must be >= 0, got {factor}")
    return None if factor == 0 else Degradations().scaled(factor)


def build_sr_task(cfg: TrainConfig) -> Task:
    """The super-resolution task: HR images and video frames from ``cfg.data`` (or the frames of
    the shipped sample video), random crops of ``cfg.crop`` HR pixels (rounded down to a
    multiple of ``cfg.scale``), LR made on the fly.

    About one image in twenty (chosen by a hash of its name, so stable across runs) is held out
    for validation, at most ``extra["val_limit"]`` (default 8).

    ``cfg.extra`` keys: ``degrade`` (multiplies the degradation probabilities; 0 trains on clean
    inputs only; default 1), ``sr_grad_weight`` (default :data:`SR_GRAD_WEIGHT`),
    ``image_step`` / ``video_step`` (keep every n-th image of a folder / frame of a video),
    ``val_every_nth``, ``val_limit``.

    Raises:
        ValueError: ``cfg.model`` is not an SR model, or upscales by another factor than
            ``cfg.scale``.
        DataError: no usable images.
    """
    spec = get_spec(cfg.model)
    if spec.kind != "sr":
        raise ValueError(f"model {cfg.model!r} is a {spec.kind} model, not a super-resolution "
                         "model")
    if spec.scale != cfg.scale:
        raise ValueError(f"model {cfg.model!r} upscales by {spec.scale}, but the scale asked for "
                         f"is {cfg.scale}; pick an x{cfg.scale} model")
    scale = cfg.scale
    lr_patch = cfg.crop // scale
    if lr_patch < 8:
        raise ValueError(f"--crop {cfg.crop} is too small for x{scale}: use at least {8 * scale}")
    model: nn.Module = get_model(cfg.model)
    length = cfg.steps * cfg.batch + cfg.batch
    deg = _degradations(cfg)
    loss = sr_loss(float(cfg.extra.get("sr_grad_weight", SR_GRAD_WEIGHT)))
    if not cfg.data:
        from training.tasks import default_frames

        frames = default_frames()
        lr_patch = min(lr_patch, min(frames[0].shape[:2]) // scale)
        train_set: Dataset = SRDataset(frames[:-1], scale, lr_patch, length, cfg.seed, deg)
        val_items = sr_val_items(frames[-1:], scale, max_side=256)
        log.info("no --data: training on %d frames of the sample video", len(frames) - 1)
        return Task(cfg.model, model, train_set, val_items, sr_forward, loss)
    images = collect_hr_images(
        cfg.data, min_size=lr_patch * scale,
        image_step=int(cfg.extra.get("image_step", 1)),
        video_step=int(cfg.extra.get("video_step", 5)))
    every = int(cfg.extra.get("val_every_nth", 20))
    limit = int(cfg.extra.get("val_limit", 8))
    val = [im for im in images if _is_val(im, every)][:limit]
    val_names = {im.name for im in val}
    train = [im for im in images if im.name not in val_names]
    if not train:
        raise DataError("every image was held out for validation; add more images")
    log.info("%d HR images for training, %d held out for validation", len(train), len(val))
    train_set = SRDataset([im.image for im in train], scale, lr_patch, length, cfg.seed, deg)
    val_items = sr_val_items([im.image for im in val], scale)
    return Task(cfg.model, model, train_set, val_items, sr_forward, loss)
