"""The training loop shared by ``m23 train interp`` and ``m23 train sr``.

AdamW with linear warm-up and cosine decay; CUDA with mixed precision when present, CPU
otherwise; DDP when started by ``torchrun`` (gloo on CPU, NCCL on CUDA); checkpoints every few
minutes, on Ctrl-C and at the end; validation PSNR every N steps; a CSV log.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from training.checkpoint import load_training_state, save_checkpoint
from training.losses import psnr

__all__ = ["TrainConfig", "Task", "train", "lr_at", "DistInfo", "dist_info"]

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Everything a training run needs; saved into each checkpoint's state.json."""

    task: str = "interp"
    model: str = "interp_occ4"
    data: list[str] = field(default_factory=list)
    out: str = "runs/interp"
    steps: int = 20_000
    batch: int = 8
    crop: int = 192
    lr: float = 1e-3
    min_lr: float = 1e-5
    weight_decay: float = 1e-4
    warmup: int = 300
    val_every: int = 500
    ckpt_minutes: float = 5.0
    log_every: int = 50
    workers: int = 1
    seed: int = 0
    resume: bool = False
    init_from: str | None = None
    amp: bool = True
    grad_weight: float = 0.5
    census_weight: float = 0.0
    loss: str = "charbonnier"
    scale: int = 2
    threads: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Task:
    """What differs between tasks: the model, the data and how a batch becomes a loss."""

    arch: str
    model: nn.Module
    train_set: Dataset
    val_items: list[dict[str, Tensor]]
    forward: Callable[[nn.Module, dict[str, Tensor]], Tensor]
    loss: Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class DistInfo:
    """Process-group facts of this process (world size 1 when not under torchrun)."""

    rank: int
    world: int
    local_rank: int

    @property
    def main(self) -> bool:
        return self.rank == 0


def dist_info() -> DistInfo:
    """Read torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK)."""
    return DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                    int(os.environ.get("LOCAL_RANK", 0)))


def _stop_on_sigterm() -> Any:
    """Make SIGTERM stop training like Ctrl-C (a checkpoint is saved). Background jobs started
    from a non-interactive shell ignore SIGINT, so SIGTERM is the way to stop them cleanly.

    Returns the previous handler, or None when not in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate at ``step``: linear warm-up, then cosine decay to ``min_lr``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))


def _batches(loader: DataLoader, sampler: Any) -> Iterator[dict[str, Tensor]]:
    epoch = 0
    while True:
        if sampler is not None:
            sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def _to(batch: dict[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


@torch.no_grad()
def validate(task: Task, model: nn.Module, device: torch.device) -> float:
    """Mean PSNR (dB) of the model on the task's validation items."""
    if not task.val_items:
        return float("nan")
    model.eval()
    vals = []
    for item in task.val_items:
        batch = _to({k: v.unsqueeze(0) for k, v in item.items()}, device)
        pred = task.forward(model, batch)
        vals.append(float(psnr(pred.float(), batch["gt"].float()).mean()))
    model.train()
    return sum(vals) / len(vals)


def train(cfg: TrainConfig, task: Task, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) training; returns the final state (step, best validation PSNR, ...).

    Under torchrun the model is wrapped in DistributedDataParallel; only rank 0 writes
    checkpoints and logs. Ctrl-C saves a checkpoint and returns.
    """
    di = dist_info()
    use_cuda = torch.cuda.is_available()
    if di.world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if use_cuda else "gloo")
    device = torch.device(f"cuda:{di.local_rank}" if use_cuda else "cpu")
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed + di.rank)
    out = Path(cfg.out)
    model = task.model.to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    no_decay = [p for n, p in model.named_parameters() if p.dim() <= 1]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay},
         {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    state: dict[str, Any] = {"step": 0, "best_val_psnr": None, "config": asdict(cfg),
                             "elapsed_s": 0.0, "val": []}
    if cfg.resume and (out / "last" / "state.json").exists():
        prev = load_training_state(out / "last", model, task.arch, opt)
        state.update({k: prev[k] for k in ("step", "best_val_psnr", "elapsed_s", "val")
                      if k in prev})
        state["config"] = asdict(cfg)
        log.info("resumed from %s at step %d", out / "last", state["step"])
    elif cfg.init_from:
        from training.checkpoint import load_weights

        load_weights(cfg.init_from, model, task.arch)
        log.info("initialized weights from %s", cfg.init_from)
    net: nn.Module = model
    if di.world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[di.local_rank] if use_cuda else None)
    sampler: Any = None
    if di.world > 1:
        sampler = torch.utils.data.distributed.DistributedSampler(
            task.train_set, num_replicas=di.world, rank=di.rank, seed=cfg.seed)
    loader = DataLoader(
        task.train_set, batch_size=cfg.batch, shuffle=sampler is None, sampler=sampler,
        num_workers=cfg.workers, drop_last=True, persistent_workers=cfg.workers > 0,
        pin_memory=use_cuda,
        generator=torch.Generator().manual_seed(cfg.seed * 7919 + state["step"]),
    )
    amp = cfg.amp and use_cuda
    amp_dtype = torch.bfloat16 if use_cuda and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp and amp_dtype == torch.float16)
    if di.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    csv_path = out / "log.csv"
    new_csv = di.main and not csv_path.exists()
    csv_file = open(csv_path, "a", newline="") if di.main else None  # noqa: SIM115
    writer = csv.writer(csv_file) if csv_file else None
    if writer and new_csv:
        writer.writerow(["step", "loss", "lr", "val_psnr", "elapsed_s", "steps_per_s"])

    def checkpoint(tag: str = "last") -> None:
        if di.main:
            save_checkpoint(out / tag, model, task.arch, opt if tag == "last" else None, state)

    pbar = None
    if progress and di.main:
        from tqdm import tqdm

        pbar = tqdm(total=cfg.steps, initial=state["step"], unit="step", dynamic_ncols=True)
    t_start = time.monotonic() - float(state["elapsed_s"])
    t_ckpt = time.monotonic()
    t_log = time.monotonic()
    running, n_running, log_step0 = 0.0, 0, state["step"]
    batches = _batches(loader, sampler)
    previous_handler = _stop_on_sigterm()
    if di.main and state["step"] == 0 and not state["val"]:
        # The starting point is a candidate too (a hybrid model starts at its classical method).
        val0 = validate(task, model, device)
        state["val"].append([0, val0])
        state["best_val_psnr"] = val0
        checkpoint("best")
        log.info("step 0 val PSNR %.3f dB", val0)
    model.train()
    try:
        while state["step"] < cfg.steps:
            step = state["step"]
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg)
            batch = _to(next(batches), device)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
                pred = task.forward(net, batch)
                loss = task.loss(pred.float(), batch["gt"])
            loss_value = float(loss.detach())
            if not torch.isfinite(loss.detach()):
                raise FloatingPointError(f"loss is {loss_value} at step {step}; stopping")
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(opt)
            scaler.update()
            state["step"] = step + 1
            running += loss_value
            n_running += 1
            if pbar is not None:
                pbar.update(1)
                pbar.set_postfix(loss=f"{loss_value:.4f}")
            now = time.monotonic()
            state["elapsed_s"] = now - t_start
            val = None
            if di.main and (state["step"] % cfg.val_every == 0 or state["step"] == cfg.steps):
                val = validate(task, model, device)
                state["val"].append([state["step"], val])
                if state["best_val_psnr"] is None or val > state["best_val_psnr"]:
                    state["best_val_psnr"] = val
                    checkpoint("best")
                log.info("step %d val PSNR %.3f dB (best %.3f)", state["step"], val,
                         state["best_val_psnr"])
            if writer and (state["step"] % cfg.log_every == 0 or val is not None):
                sps = (state["step"] - log_step0) / max(1e-9, now - t_log)
                writer.writerow([state["step"], f"{running / max(1, n_running):.5f}",
                                 f"{lr_at(step, cfg):.3g}", "" if val is None else f"{val:.4f}",
                                 f"{state['elapsed_s']:.1f}", f"{sps:.3f}"])
                assert csv_file is not None
                csv_file.flush()
                running, n_running, log_step0, t_log = 0.0, 0, state["step"], now
            if now - t_ckpt > cfg.ckpt_minutes * 60:
                checkpoint()
                t_ckpt = now
    except KeyboardInterrupt:
        log.warning("interrupted at step %d; saving a checkpoint", state["step"])
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)
        checkpoint()
        if pbar is not None:
            pbar.close()
        if csv_file is not None:
            csv_file.close()
        if di.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    return state
