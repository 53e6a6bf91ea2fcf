"""``m23 study-init``: the initialization study that tests the original write-up's claims.

Six initializations (:data:`SCHEMES`), each with several seeds, on four parts:

1. ``propagation``: plain (no normalization, no residual, no bias) ReLU and tanh networks, MLP
   and CNN, of several depths, in float64: activation norm and weight-gradient norm per layer
   (relative to the input / to the largest layer), the condition number of every weight, and
   the singular values of the end-to-end input-output Jacobian of a narrow MLP.
2. ``transformer``: a 24-layer character-level language model on the documentation text that
   ships with Python (``pydoc_data.topics``), plain (attention and feed-forward blocks without
   normalization or residuals) and standard (``nn.TransformerEncoderLayer``: post-norm and
   residuals): steps to reach a fixed validation loss, final validation loss, the standard
   deviation of the global gradient norm over training.
3. ``project``: the project's own models (SR and interpolation, tiny variants) trained for a
   fixed short budget from each initialization: validation PSNR curves.
4. ``resources``: parameter bytes, peak memory (in a fresh process per model and scheme) and
   inference latency of models initialized each way.

Every part writes ``OUT/<part>.json``; the summary (``results.json``, ``study.md``,
``claims.md`` and PNG plots) is rebuilt from whichever part files exist, so parts can be run
separately (``--parts``) into one folder.

Initialization rules (all weights of ``nn.Linear``, ``nn.Conv*`` and the input projections of
``nn.MultiheadAttention``, per ``E x E`` chunk; biases zero; embeddings and norms left as
PyTorch makes them): ``m23_norm`` is ``m23init`` norm mode with the nonlinearity's gain,
``m23_literal`` is spectral radius ``sqrt(2 / fan_in)`` (gain 1, as written), ``kaiming`` is
``kaiming_normal_`` (fan_in, the network's nonlinearity), ``xavier`` is ``xavier_normal_``
(gain 1, Glorot's original), ``orthogonal`` is ``orthogonal_`` with the nonlinearity's gain,
``default`` is what the PyTorch modules do on construction (biases included).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "SCHEMES",
    "PARTS",
    "StudySizes",
    "FULL",
    "QUICK",
    "initialize",
    "run_study",
    "summarize",
    "main",
]

log = logging.getLogger(__name__)

SCHEMES: tuple[str, ...] = ("m23_norm", "m23_literal", "kaiming", "xavier", "orthogonal",
                            "default")
"""The compared initializations, in table order."""

PARTS: tuple[str, ...] = ("propagation", "transformer", "project", "resources")
"""The parts of the study, each written to ``OUT/<part>.json``."""

Nonlinearity = Literal["relu", "tanh", "leaky_relu", "linear"]
"""The nonlinearities whose gain :func:`initialize` uses."""

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "assets" / "results" / "study"

_COLORS = {"m23_norm": "C0", "m23_literal": "C1", "kaiming": "C2", "xavier": "C3",
           "orthogonal": "C4", "default": "C7"}


@dataclass(frozen=True)
class StudySizes:
    """The sizes of one study run (see :data:`FULL` and :data:`QUICK`)."""

    name: str = "full"
    seeds: int = 3
    # 1. signal propagation
    prop_depths: tuple[int, ...] = (10, 50, 144)
    prop_width: int = 256
    prop_batch: int = 128
    cnn_channels: int = 32
    cnn_size: int = 16
    cnn_batch: int = 8
    jac_width: int = 32
    # 2. transformer
    tf_layers: int = 24
    tf_width: int = 48
    tf_heads: int = 4
    tf_ff: int = 96
    tf_seq: int = 32
    tf_batch: int = 16
    tf_steps: int = 600
    tf_val_every: int = 30
    tf_val_seqs: int = 32
    # 1e-3 left the post-norm 24-layer model on its plateau (about 3.3 nats/char) for 800
    # steps with every scheme; 3e-4 with a 100-step warm-up trains it.
    tf_lr: float = 3e-4
    tf_warmup: int = 100
    tf_target: float = 3.0
    tf_target2: float = 2.5
    tf_variants: tuple[str, ...] = ("plain", "standard")
    # 3. project models
    proj_models: tuple[str, ...] = ("sr_tiny_x2", "interp_hybrid_tiny")
    proj_seeds: int = 2
    proj_steps: int = 200
    proj_val_every: int = 25
    proj_batch: int = 4
    proj_crop: int = 64
    proj_lr: float = 1e-3
    # 4. resources
    res_reps: int = 20
    res_memory: bool = True
    res_sr_size: int = 256
    res_models: tuple[str, ...] = ("transformer_plain", "sr_x2", "mlp_relu_deep")
    extra: dict[str, Any] = field(default_factory=dict)


FULL = StudySizes()
"""The committed study: about 28 minutes of one CPU thread per part in all (propagation 335 s,
transformer 416 + 831 s, project 52 s, resources 50 s on the 2-core development machine)."""

QUICK = StudySizes(
    name="quick", seeds=2, prop_depths=(10, 50), prop_width=64, prop_batch=64, cnn_channels=8,
    cnn_size=8, cnn_batch=4, jac_width=16, tf_layers=24, tf_width=32, tf_heads=2, tf_ff=64,
    tf_seq=32, tf_batch=8, tf_steps=40, tf_val_every=10, tf_val_seqs=16, tf_target=3.0,
    proj_models=("sr_tiny_x2",), proj_seeds=1, proj_steps=30, proj_val_every=10, proj_batch=2,
    proj_crop=48, res_reps=5, res_memory=False, res_sr_size=64,
    res_models=("transformer_plain", "sr_x2"),
)
"""``--quick``: the same code on small sizes (a few minutes on 2 cores)."""


# --------------------------------------------------------------------------------------------
# Initializations
# --------------------------------------------------------------------------------------------


def _weights(model: nn.Module) -> list[tuple[str, Tensor, nn.Module]]:
    """The weights an initialization scheme sets: ``(name, tensor, module)``, MHA in-projections
    split into their ``E x E`` chunks (views)."""
    out: list[tuple[str, Tensor, nn.Module]] = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            out.append((f"{name}.weight", module.weight, module))
        elif isinstance(module, nn.MultiheadAttention):
            if module.in_proj_weight is not None:
                for i, chunk in enumerate(module.in_proj_weight.chunk(3, dim=0)):
                    out.append((f"{name}.in_proj_weight[{i}]", chunk, module))
            else:
                for p in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                    out.append((f"{name}.{p}", getattr(module, p), module))
    return out


def _zero_biases(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.MultiheadAttention) and module.in_proj_bias is not None:
            nn.init.zeros_(module.in_proj_bias)


@torch.no_grad()
def initialize(model: nn.Module, scheme: str, seed: int, nonlinearity: Nonlinearity = "relu",
               param: float | None = None) -> nn.Module:
    """Re-initialize ``model`` in place with one of :data:`SCHEMES` (rules: module docstring).

    Args:
        model: any module; its Linear, Conv and MultiheadAttention weights are set.
        scheme: one of :data:`SCHEMES`; ``"default"`` leaves the model as constructed.
        seed: seed of the random draw.
        nonlinearity: the network's nonlinearity for the gain (``torch.nn.init.calculate_gain``
            names: ``"relu"``, ``"tanh"``, ``"leaky_relu"``, ``"linear"``).
        param: the nonlinearity's parameter (the negative slope of ``"leaky_relu"``).

    Returns:
        ``model``.

    Raises:
        ValueError: an unknown scheme.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if scheme == "default":
        return model
    gain = nn.init.calculate_gain(nonlinearity, param)
    if scheme in ("m23_norm", "m23_literal"):
        from m23init import init_model

        literal = scheme == "m23_literal"
        init_model(model, scale="literal" if literal else "norm", gain=1.0 if literal else gain,
                   seed=seed)
        return model
    gen = torch.Generator().manual_seed(seed)
    for _, weight, _module in _weights(model):
        if scheme == "kaiming":
            nn.init.kaiming_normal_(weight, a=param or 0.0, nonlinearity=nonlinearity,
                                    generator=gen)
        elif scheme == "xavier":
            nn.init.xavier_normal_(weight, gain=1.0, generator=gen)
        else:
            nn.init.orthogonal_(weight, gain=gain, generator=gen)
    _zero_biases(model)
    return model


def _build(factory: Callable[[], nn.Module], scheme: str, seed: int,
           nonlinearity: Nonlinearity = "relu", param: float | None = None) -> nn.Module:
    torch.manual_seed(seed)
    return initialize(factory(), scheme, seed, nonlinearity, param)


# --------------------------------------------------------------------------------------------
# 1. Signal propagation
# --------------------------------------------------------------------------------------------


def _act(nonlinearity: Nonlinearity) -> nn.Module:
    return nn.ReLU() if nonlinearity == "relu" else nn.Tanh()


def plain_mlp(depth: int, width: int, nonlinearity: Nonlinearity) -> nn.Sequential:
    """``depth`` x (Linear(width, width, bias=False), ReLU or tanh): no norm, no residual."""
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width, bias=False), _act(nonlinearity)]
    return nn.Sequential(*layers)


def plain_cnn(depth: int, channels: int, nonlinearity: Nonlinearity) -> nn.Sequential:
    """``depth`` x (3x3 Conv2d(channels, channels, bias=False), ReLU or tanh), padding 1."""
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Conv2d(channels, channels, 3, padding=1, bias=False), _act(nonlinearity)]
    return nn.Sequential(*layers)


def _log10(x: float) -> float | None:
    return math.log10(x) if x > 0 and math.isfinite(x) else None


def _propagate(model: nn.Module, x: Tensor, seed: int) -> dict[str, Any]:
    """Forward and backward through a plain stack; norms per layer (after each nonlinearity).

    The backward pass starts from a fixed random direction at the output (unit norm per
    sample), so weight gradients measure how a fixed error signal reaches each layer.
    """
    acts: list[Tensor] = []
    h = x
    for module in model.children():
        h = module(h)
        if not isinstance(module, (nn.Linear, nn.Conv2d)):
            acts.append(h)
    gen = torch.Generator().manual_seed(seed + 7)
    direction = torch.randn(h.shape, generator=gen, dtype=h.dtype)
    direction = direction / direction.flatten(1).norm(dim=1).view(-1, *[1] * (h.dim() - 1))
    model.zero_grad(set_to_none=True)
    (h * direction).sum().backward()
    in_norm = float(x.norm())
    act_ratio = [float(a.detach().norm()) / in_norm for a in acts]
    weights = [m.weight for m in model.children() if isinstance(m, (nn.Linear, nn.Conv2d))]
    grads = [float(w.grad.norm()) if w.grad is not None else 0.0 for w in weights]
    conds = []
    for w in weights:
        s = torch.linalg.svdvals(w.detach().flatten(1))
        conds.append(float(s[0] / s[-1]) if float(s[-1]) > 0 else math.inf)
    return {"act_ratio": act_ratio, "grad_norm": grads, "cond": conds}


def _jacobian_svs(depth: int, width: int, nonlinearity: Nonlinearity, scheme: str, seed: int
                  ) -> list[float]:
    model = _build(partial(plain_mlp, depth, width, nonlinearity), scheme, seed,
                   nonlinearity).double()
    x = torch.randn(width, generator=torch.Generator().manual_seed(seed + 3), dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: model(v), x)
    return [float(s) for s in torch.linalg.svdvals(jac)]


def _sv_summary(svs: list[float]) -> dict[str, float | None]:
    """Spread of singular values. A plain ReLU net's Jacobian loses rank with depth (each ReLU
    zeroes about half the coordinates), so the spread is taken over the singular values above
    ``1e-9 * max`` (``rank_fraction`` of them): max/median and log10(max/min) of those."""
    arr = np.sort(np.asarray(svs, dtype=float))[::-1]
    top = float(arr[0])
    kept = arr[arr > 1e-9 * top] if top > 0 else arr[:0]
    if not len(kept):
        return {"max": top, "rank_fraction": 0.0, "max_over_median": None,
                "log10_max_over_min": None}
    return {"max": top, "rank_fraction": len(kept) / len(arr),
            "max_over_median": top / float(np.median(kept)),
            "log10_max_over_min": math.log10(top / float(kept[-1]))}


def run_propagation(sizes: StudySizes) -> dict[str, Any]:
    """Part 1 (see the module docstring); float64 so that vanishing signals stay measurable."""
    results: list[dict[str, Any]] = []
    nonlins: tuple[Nonlinearity, ...] = ("relu", "tanh")
    for arch in ("mlp", "cnn"):
        for nonlin in nonlins:
            for depth in sizes.prop_depths:
                for scheme in SCHEMES:
                    for seed in range(sizes.seeds):
                        if arch == "mlp":
                            factory = partial(plain_mlp, depth, sizes.prop_width, nonlin)
                            shape: tuple[int, ...] = (sizes.prop_batch, sizes.prop_width)
                        else:
                            factory = partial(plain_cnn, depth, sizes.cnn_channels, nonlin)
                            shape = (sizes.cnn_batch, sizes.cnn_channels, sizes.cnn_size,
                                     sizes.cnn_size)
                        model = _build(factory, scheme, seed, nonlin).double()
                        gen = torch.Generator().manual_seed(1000 + seed)
                        x = torch.randn(shape, generator=gen, dtype=torch.float64)
                        row: dict[str, Any] = {"arch": arch, "nonlinearity": nonlin,
                                               "depth": depth, "scheme": scheme, "seed": seed}
                        row.update(_propagate(model, x, seed))
                        if arch == "mlp":
                            svs = _jacobian_svs(depth, sizes.jac_width, nonlin, scheme, seed)
                            row["jacobian_sv"] = svs
                            row["jacobian"] = _sv_summary(svs)
                        results.append(row)
                log.info("propagation %s %s depth %s done", arch, nonlin, depth)
    return {"sizes": {"depths": list(sizes.prop_depths), "mlp_width": sizes.prop_width,
                      "mlp_batch": sizes.prop_batch, "cnn_channels": sizes.cnn_channels,
                      "cnn_size": sizes.cnn_size, "cnn_batch": sizes.cnn_batch,
                      "jacobian_width": sizes.jac_width, "dtype": "float64"},
            "runs": results}


# --------------------------------------------------------------------------------------------
# 2. The 24-layer transformer
# --------------------------------------------------------------------------------------------


def pydoc_text() -> str:
    """The documentation text that ships with Python (``pydoc_data.topics``), topics sorted."""
    from pydoc_data.topics import topics

    return "\n".join(topics[k] for k in sorted(topics))


class PlainBlock(nn.Module):
    """Causal self-attention then ReLU feed-forward, with no normalization and no residual."""

    def __init__(self, width: int, heads: int, ff: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, dropout=0.0, batch_first=True)
        self.ff1 = nn.Linear(width, ff)
        self.ff2 = nn.Linear(ff, width)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """(B, T, width) -> (B, T, width); ``mask`` (T, T) float causal mask."""
        x = self.attn(x, x, x, attn_mask=mask, need_weights=False)[0]
        return self.ff2(torch.relu(self.ff1(x)))


class CharTransformer(nn.Module):
    """Character-level causal language model of ``layers`` blocks.

    Args:
        vocab: number of symbols.
        variant: ``"plain"`` (:class:`PlainBlock`) or ``"standard"``
            (``nn.TransformerEncoderLayer``: post-norm, residuals, ReLU, no dropout).
    """

    def __init__(self, vocab: int, layers: int, width: int, heads: int, ff: int, seq: int,
                 variant: str) -> None:
        super().__init__()
        if variant not in ("plain", "standard"):
            raise ValueError(f"variant must be plain or standard, got {variant!r}")
        self.tok = nn.Embedding(vocab, width)
        self.pos = nn.Embedding(seq, width)
        self.blocks = nn.ModuleList(
            PlainBlock(width, heads, ff) if variant == "plain" else
            nn.TransformerEncoderLayer(width, heads, ff, dropout=0.0, batch_first=True)
            for _ in range(layers))
        self.head = nn.Linear(width, vocab)
        self.variant = variant

    def forward(self, idx: Tensor) -> Tensor:
        """(B, T) int64 symbols -> (B, T, vocab) logits."""
        t = idx.shape[1]
        x = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
        mask = nn.Transformer.generate_square_subsequent_mask(t, device=idx.device)
        for block in self.blocks:
            if self.variant == "plain":
                x = block(x, mask)
            else:
                x = block(x, src_mask=mask, is_causal=True)
        return self.head(x)


def _encode_text(text: str) -> tuple[Tensor, int]:
    chars = sorted(set(text))
    table = {c: i for i, c in enumerate(chars)}
    return torch.tensor([table[c] for c in text], dtype=torch.long), len(chars)


def _tf_factory(sizes: StudySizes, vocab: int, variant: str) -> Callable[[], nn.Module]:
    return lambda: CharTransformer(vocab, sizes.tf_layers, sizes.tf_width, sizes.tf_heads,
                                   sizes.tf_ff, sizes.tf_seq, variant)


def _train_lm(model: nn.Module, train: Tensor, val: Tensor, sizes: StudySizes, seed: int
              ) -> dict[str, Any]:
    """AdamW, linear warm-up then constant rate, gradient norm clipped at 1 (the norm is
    recorded before clipping). Stops early on a non-finite loss."""
    seq, batch = sizes.tf_seq, sizes.tf_batch
    loss_fn = nn.CrossEntropyLoss()
    starts = torch.linspace(0, len(val) - seq - 2, sizes.tf_val_seqs).long()
    val_x = torch.stack([val[s:s + seq] for s in starts])
    val_y = torch.stack([val[s + 1:s + seq + 1] for s in starts])
    opt = torch.optim.AdamW(model.parameters(), lr=sizes.tf_lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def val_loss() -> float:
        model.eval()
        out = loss_fn(model(val_x).flatten(0, 1), val_y.flatten())
        model.train()
        return float(out)

    curve: list[tuple[int, float]] = [(0, val_loss())]
    grad_norms: list[float] = []
    diverged: int | None = None
    for step in range(1, sizes.tf_steps + 1):
        for group in opt.param_groups:
            group["lr"] = sizes.tf_lr * min(1.0, step / max(1, sizes.tf_warmup))
        idx = torch.randint(0, len(train) - seq - 1, (batch,), generator=gen)
        x = torch.stack([train[i:i + seq] for i in idx])
        y = torch.stack([train[i + 1:i + seq + 1] for i in idx])
        loss = loss_fn(model(x).flatten(0, 1), y.flatten())
        if not torch.isfinite(loss):
            diverged = step
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = float(nn.utils.clip_grad_norm_(model.parameters(), 1.0))
        grad_norms.append(norm)
        opt.step()
        if step % sizes.tf_val_every == 0 or step == sizes.tf_steps:
            curve.append((step, val_loss()))
    reached = next((s for s, v in curve if v <= sizes.tf_target), None)
    finite = [g for g in grad_norms if math.isfinite(g)]
    return {"val_curve": curve, "final_val_loss": None if diverged else curve[-1][1],
            "steps_to_target": reached,
            "grad_norm_std": statistics.pstdev(finite) if len(finite) > 1 else None,
            "grad_norm_mean": statistics.fmean(finite) if finite else None,
            "grad_norm_first": finite[0] if finite else None, "diverged_at": diverged}


def _weight_conds(model: nn.Module) -> list[float]:
    """The condition number of every weight :func:`initialize` sets; NaN for a weight with
    non-finite entries (a run that diverged)."""
    conds = []
    for _, w, _m in _weights(model):
        if not bool(torch.isfinite(w).all()):
            conds.append(math.nan)
            continue
        s = torch.linalg.svdvals(w.detach().float().flatten(1))
        conds.append(float(s[0] / s[-1]) if float(s[-1]) > 0 else math.inf)
    return conds


def run_transformer(sizes: StudySizes) -> dict[str, Any]:
    """Part 2 (see the module docstring)."""
    data, vocab = _encode_text(pydoc_text())
    split = int(0.9 * len(data))
    train, val = data[:split], data[split:]
    runs = []
    for variant in sizes.tf_variants:
        for scheme in SCHEMES:
            for seed in range(sizes.seeds):
                t0 = time.perf_counter()
                model = _build(_tf_factory(sizes, vocab, variant), scheme, seed)
                conds = _weight_conds(model)
                row: dict[str, Any] = {"variant": variant, "scheme": scheme, "seed": seed,
                                       "cond_init_median": float(np.median(conds)),
                                       "cond_init_max": float(np.max(conds))}
                row.update(_train_lm(model, train, val, sizes, seed))
                final = [c for c in _weight_conds(model) if not math.isnan(c)]
                row["cond_final_median"] = float(np.median(final)) if final else None
                row["seconds"] = time.perf_counter() - t0
                runs.append(row)
                log.info("transformer %s %s seed %d: val %s, target at %s (%.0f s)", variant,
                         scheme, seed, row["final_val_loss"], row["steps_to_target"],
                         row["seconds"])
    return {"sizes": {"layers": sizes.tf_layers, "width": sizes.tf_width,
                      "heads": sizes.tf_heads, "ff": sizes.tf_ff, "seq": sizes.tf_seq,
                      "batch": sizes.tf_batch, "steps": sizes.tf_steps, "lr": sizes.tf_lr,
                      "warmup": sizes.tf_warmup, "target_val_loss": sizes.tf_target,
                      "target2_val_loss": sizes.tf_target2,
                      "val_every": sizes.tf_val_every, "val_seqs": sizes.tf_val_seqs,
                      "text_chars": len(data), "vocab": vocab,
                      "variants": list(sizes.tf_variants),
                      "optimizer": "AdamW, clip 1.0, constant after warm-up"},
            "runs": runs}


# --------------------------------------------------------------------------------------------
# 3. The project's own models
# --------------------------------------------------------------------------------------------


def _project_task(name: str, sizes: StudySizes, seed: int) -> Any:
    from models.registry import get_spec
    from training.loop import TrainConfig

    spec = get_spec(name)
    cfg = TrainConfig(task=spec.kind, model=name, steps=sizes.proj_steps,
                      batch=sizes.proj_batch, crop=sizes.proj_crop, seed=seed,
                      scale=spec.scale or 2)
    if spec.kind == "sr":
        from training.sr_task import build_sr_task

        return build_sr_task(cfg)
    from training.tasks import build_interp_task

    return build_interp_task(cfg)


def run_project(sizes: StudySizes) -> dict[str, Any]:
    """Part 3: each project model, each scheme, ``proj_seeds`` seeds; Adam at ``proj_lr`` for
    ``proj_steps`` steps on the built-in data (frames of the shipped sample video), the same
    batches for every scheme of one seed; validation PSNR (dB) every ``proj_val_every`` steps.
    """
    from torch.utils.data import DataLoader

    from models.registry import get_model, get_spec
    from training.loop import validate

    cpu = torch.device("cpu")
    runs = []
    for name in sizes.proj_models:
        kind = get_spec(name).kind
        nonlin: Nonlinearity = "relu" if kind == "sr" else "leaky_relu"
        param = None if kind == "sr" else 0.1
        for seed in range(sizes.proj_seeds):
            task = _project_task(name, sizes, seed)
            loader = DataLoader(task.train_set, batch_size=sizes.proj_batch, shuffle=False,
                                num_workers=0)
            batches = []
            for b in loader:
                batches.append(b)
                if len(batches) == sizes.proj_steps:
                    break
            for scheme in SCHEMES:
                t0 = time.perf_counter()
                model = _build(partial(get_model, name), scheme, seed, nonlin, param)
                task.model = model
                opt = torch.optim.Adam(model.parameters(), lr=sizes.proj_lr)
                curve = [(0, validate(task, model, cpu))]
                model.train()
                for step, batch in enumerate(batches, start=1):
                    loss = task.loss(task.forward(model, batch), batch["gt"])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    if step % sizes.proj_val_every == 0 or step == len(batches):
                        curve.append((step, validate(task, model, cpu)))
                runs.append({"model": name, "scheme": scheme, "seed": seed, "psnr_curve": curve,
                             "final_psnr": curve[-1][1], "best_psnr": max(v for _, v in curve),
                             "seconds": time.perf_counter() - t0})
                log.info("project %s %s seed %d: %.2f dB", name, scheme, seed, curve[-1][1])
    return {"sizes": {"models": list(sizes.proj_models), "seeds": sizes.proj_seeds,
                      "steps": sizes.proj_steps, "batch": sizes.proj_batch,
                      "crop": sizes.proj_crop, "lr": sizes.proj_lr, "optimizer": "Adam",
                      "data": "built-in (frames of assets/sample.mp4)"},
            "runs": runs}


# --------------------------------------------------------------------------------------------
# 4. Memory and latency
# --------------------------------------------------------------------------------------------


def _resource_model(name: str, sizes: StudySizes, scheme: str) -> tuple[nn.Module, Tensor]:
    if name == "transformer_plain":
        vocab = 100
        model = _build(_tf_factory(sizes, vocab, "plain"), scheme, 0)
        x: Tensor = torch.randint(0, vocab, (sizes.tf_batch, sizes.tf_seq),
                                  generator=torch.Generator().manual_seed(0))
    elif name == "mlp_relu_deep":
        depth = max(sizes.prop_depths)
        model = _build(lambda: plain_mlp(depth, sizes.prop_width, "relu"), scheme, 0)
        x = torch.randn(sizes.prop_batch, sizes.prop_width,
                        generator=torch.Generator().manual_seed(0))
    else:
        from models.registry import get_model

        model = _build(lambda: get_model(name), scheme, 0)
        x = torch.rand(1, 3, sizes.res_sr_size, sizes.res_sr_size,
                       generator=torch.Generator().manual_seed(0))
    return model.eval(), x


def _memory_probe(name: str, sizes: StudySizes, scheme: str) -> dict[str, int]:
    """Peak resident memory (KiB) after building and after inference; run in a fresh process
    (:func:`_probe`), since the peak of a process only grows."""
    torch.set_num_threads(1)
    model, x = _resource_model(name, sizes, scheme)
    built = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with torch.inference_mode():
        for _ in range(3):
            model(x)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"rss_after_build_kib": built, "rss_peak_kib": peak}


def _probe_main(arg: str) -> None:
    """Entry of the probe process: ``arg`` is JSON ``[name, sizes, scheme]``; prints JSON."""
    name, sizes, scheme = json.loads(arg)
    for key, value in sizes.items():
        if isinstance(value, list):
            sizes[key] = tuple(value)
    result = _memory_probe(name, StudySizes(**sizes), scheme)
    sys.stdout.write(json.dumps(result) + "\n")


def _probe(name: str, sizes: StudySizes, scheme: str) -> dict[str, Any]:
    arg = json.dumps([name, asdict(sizes), scheme])
    code = f"from training.study import _probe_main; _probe_main({arg!r})"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory probe of {name}/{scheme} failed: {done.stderr.strip()[-500:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run_resources(sizes: StudySizes) -> dict[str, Any]:
    """Part 4: parameter bytes, peak memory (fresh process each, if ``res_memory``) and median
    inference latency (one thread, schemes interleaved round-robin so that load on the machine
    affects all alike) of the same architectures initialized each way."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows = []
    try:
        for name in sizes.res_models:
            built = {s: _resource_model(name, sizes, s) for s in SCHEMES}
            times: dict[str, list[float]] = {s: [] for s in SCHEMES}
            with torch.inference_mode():
                for model, x in built.values():
                    model(x)
                for _ in range(sizes.res_reps):
                    for s, (model, x) in built.items():
                        t0 = time.perf_counter()
                        model(x)
                        times[s].append(time.perf_counter() - t0)
            for s, (model, x) in built.items():
                row: dict[str, Any] = {
                    "model": name, "scheme": s, "input_shape": list(x.shape),
                    "param_bytes": sum(p.numel() * p.element_size() for p in model.parameters()),
                    "latency_ms_median": 1000 * statistics.median(times[s]),
                    "latency_ms_min": 1000 * min(times[s]),
                }
                if sizes.res_memory:
                    row.update(_probe(name, sizes, s))
                    row["inference_rss_growth_kib"] = (row["rss_peak_kib"]
                                                       - row["rss_after_build_kib"])
                rows.append(row)
            log.info("resources %s done", name)
    finally:
        torch.set_num_threads(threads)
    return {"sizes": {"reps": sizes.res_reps, "threads": 1, "memory": sizes.res_memory,
                      "sr_input": sizes.res_sr_size},
            "runs": rows}


_RUNNERS: dict[str, Callable[[StudySizes], dict[str, Any]]] = {
    "propagation": run_propagation, "transformer": run_transformer, "project": run_project,
    "resources": run_resources,
}


# --------------------------------------------------------------------------------------------
# Summary: tables, claims, plots
# --------------------------------------------------------------------------------------------


def _ms(values: Sequence[float | None], fmt: str = "{:.3g}") -> str:
    """``mean +- std`` over the finite values (``n/a`` if none; the count if some are missing)."""
    good = [v for v in values if v is not None and math.isfinite(v)]
    if not good:
        return "n/a"
    text = fmt.format(statistics.fmean(good))
    if len(good) > 1:
        text += " ± " + fmt.format(statistics.pstdev(good))
    if len(good) < len(values):
        text += f" ({len(good)}/{len(values)})"
    return text


def _select(runs: list[dict[str, Any]], **keys: Any) -> list[dict[str, Any]]:
    return [r for r in runs if all(r.get(k) == v for k, v in keys.items())]


def _geo(values: Sequence[float]) -> float | None:
    """Geometric mean of positive values (None if any is 0 or not finite)."""
    if not values or any(not (v > 0 and math.isfinite(v)) for v in values):
        return None
    return float(math.exp(statistics.fmean(math.log(v) for v in values)))


def _prop_table(prop: dict[str, Any]) -> list[str]:
    runs = prop["runs"]
    depths = prop["sizes"]["depths"]
    lines = ["### 1. Signal propagation (plain nets, float64; mean ± std over seeds)", "",
             "Output/input activation norm ratio at depth " + ", ".join(map(str, depths)) +
             "; weight-gradient norm ratio first/last layer at the largest depth; median "
             "condition number of the weights; Jacobian singular values: max/median of those above "
             "1e-9 max, and the fraction of them (rank) (MLP, width "
             f"{prop['sizes']['jacobian_width']}, largest depth).", "",
             "| net | scheme | " + " | ".join(f"out/in @{d}" for d in depths) +
             " | grad first/last | weight cond | Jacobian max/median |",
             "|---|---|" + "---|" * len(depths) + "---|---|---|"]
    for arch in ("mlp", "cnn"):
        for nonlin in ("relu", "tanh"):
            for scheme in SCHEMES:
                cells = []
                for d in depths:
                    sel = _select(runs, arch=arch, nonlinearity=nonlin, depth=d, scheme=scheme)
                    cells.append(_ms([r["act_ratio"][-1] for r in sel]))
                deep = _select(runs, arch=arch, nonlinearity=nonlin, depth=max(depths),
                               scheme=scheme)
                grad = _ms([r["grad_norm"][0] / r["grad_norm"][-1] if r["grad_norm"][-1] > 0
                            else None for r in deep])
                cond = _ms([float(np.median(r["cond"])) for r in deep])
                if arch == "mlp":
                    summ = [_sv_summary(r["jacobian_sv"]) for r in deep]
                    jac = (_ms([x["max_over_median"] for x in summ]) + ", rank " +
                           _ms([x["rank_fraction"] for x in summ], "{:.2f}"))
                else:
                    jac = "—"
                lines.append(f"| {arch} {nonlin} | {scheme} | " + " | ".join(cells) +
                             f" | {grad} | {cond} | {jac} |")
    return lines


def _steps_to(curve: list[list[float]], target: float) -> float | None:
    """The first validation step with a loss at or below ``target`` (None if never)."""
    return next((float(s) for s, v in curve if v <= target), None)


def _tf_table(tf: dict[str, Any]) -> list[str]:
    sz = tf["sizes"]
    lines = [f"### 2. {sz['layers']}-layer transformer, character LM on pydoc_data.topics "
             f"(mean ± std over seeds)", "",
             f"Width {sz['width']}, {sz['heads']} heads, feed-forward {sz['ff']}, context "
             f"{sz['seq']}, batch {sz['batch']}, {sz['steps']} steps of {sz['optimizer']} at "
             f"lr {sz['lr']}; validation loss (nats/char) on {sz['val_seqs']} held-out "
             f"sequences every {sz['val_every']} steps; target {sz['target_val_loss']}. "
             "Steps to target: mean over the seeds that reached it (count in brackets).", "",
             f"| variant | scheme | steps to {sz['target_val_loss']} | steps to "
             f"{sz['target2_val_loss']} | final val loss | grad-norm std | "
             "grad-norm mean | weight cond at init (median) | diverged |",
             "|---|---|---|---|---|---|---|---|---|"]
    for variant in sz.get("variants", ("plain", "standard")):
        for scheme in SCHEMES:
            sel = _select(tf["runs"], variant=variant, scheme=scheme)
            if not sel:
                continue
            steps = [float(r["steps_to_target"]) if r["steps_to_target"] is not None else None
                     for r in sel]
            steps2 = [_steps_to(r["val_curve"], sz["target2_val_loss"]) for r in sel]
            div = sum(r["diverged_at"] is not None for r in sel)
            lines.append(
                f"| {variant} | {scheme} | {_ms(steps, '{:.0f}')} | {_ms(steps2, '{:.0f}')} | "
                f"{_ms([r['final_val_loss'] for r in sel], '{:.3f}')} | "
                f"{_ms([r['grad_norm_std'] for r in sel])} | "
                f"{_ms([r['grad_norm_mean'] for r in sel])} | "
                f"{_ms([r['cond_init_median'] for r in sel])} | {div}/{len(sel)} |")
    return lines


def _proj_table(proj: dict[str, Any]) -> list[str]:
    sz = proj["sizes"]
    lines = [f"### 3. Project models, {sz['steps']} steps (validation PSNR, dB, mean ± std over "
             f"{sz['seeds']} seed(s))", "",
             f"Batch {sz['batch']}, crop {sz['crop']}, {sz['optimizer']} lr {sz['lr']}, "
             f"data: {sz['data']}.", "",
             "| model | scheme | PSNR at step 0 | final PSNR | best PSNR |",
             "|---|---|---|---|---|"]
    for name in sz["models"]:
        for scheme in SCHEMES:
            sel = _select(proj["runs"], model=name, scheme=scheme)
            if sel:
                lines.append(f"| {name} | {scheme} | "
                             f"{_ms([r['psnr_curve'][0][1] for r in sel], '{:.2f}')} | "
                             f"{_ms([r['final_psnr'] for r in sel], '{:.2f}')} | "
                             f"{_ms([r['best_psnr'] for r in sel], '{:.2f}')} |")
    return lines


def _res_table(res: dict[str, Any]) -> list[str]:
    mem = res["sizes"]["memory"]
    lines = ["### 4. Memory and latency (one thread, median over "
             f"{res['sizes']['reps']} interleaved runs)", "",
             "| model | scheme | parameter bytes | latency ms (median) | ratio to default |" +
             (" peak RSS MiB | inference RSS growth MiB |" if mem else ""),
             "|---|---|---|---|---|" + ("---|---|" if mem else "")]
    for name in dict.fromkeys(r["model"] for r in res["runs"]):
        base = _select(res["runs"], model=name, scheme="default")[0]["latency_ms_median"]
        for r in _select(res["runs"], model=name):
            line = (f"| {name} | {r['scheme']} | {r['param_bytes']} | "
                    f"{r['latency_ms_median']:.3g} | {r['latency_ms_median'] / base:.2f} |")
            if mem:
                line += (f" {r['rss_peak_kib'] / 1024:.1f} | "
                         f"{r['inference_rss_growth_kib'] / 1024:.1f} |")
            lines.append(line)
    return lines


def _mean_of(runs: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in runs if r.get(key) is not None and math.isfinite(r[key])]
    return statistics.fmean(vals) if vals else None


_NAMES = {"m23_norm": "M23 norm", "m23_literal": "M23 literal", "kaiming": "He",
          "default": "PyTorch default"}
"""The schemes the claims table quotes, by the names it uses."""


def _tf_claims(tf: dict[str, Any], variant: str) -> list[dict[str, str]]:
    """The four transformer claims for one variant (``plain`` or ``standard``): each verdict is
    given for both M23 modes against He (Kaiming); PyTorch's default is quoted for context."""
    runs = _select(tf["runs"], variant=variant)
    sz = tf["sizes"]
    sel = {s: _select(runs, scheme=s) for s in _NAMES}
    setting = (f"{sz['layers']}-layer {variant} transformer, char LM, {sz['steps']} steps, "
               f"{len(sel['kaiming'])} seeds")

    def cells(key: str, fmt: str) -> str:
        out = []
        for s, scheme_runs in sel.items():
            vals = [float(r[key]) if r[key] is not None else None for r in scheme_runs]
            div = sum(r["diverged_at"] is not None for r in scheme_runs)
            out.append(f"{_NAMES[s]} {_ms(vals, fmt)}" +
                       (f" [diverged {div}/{len(scheme_runs)}]" if div else ""))
        return ", ".join(out)

    def trained(s: str) -> bool:
        return any(r["diverged_at"] is None for r in sel[s])

    def steps_key(r: dict[str, Any]) -> float | None:
        # Not reaching the target counts as taking longer than the run.
        if r["diverged_at"] is not None:
            return None
        return float(r["steps_to_target"] if r["steps_to_target"] is not None
                     else sz["steps"] + sz["val_every"])

    def verdict(better: Callable[[str], bool], what: str) -> str:
        ok = [_NAMES[m] for m in ("m23_norm", "m23_literal") if trained(m)]
        if not trained("kaiming"):
            return ("not testable: He diverges" +
                    (f" ({' and '.join(ok)} does not)" if ok else ", and so does M23"))
        held = [_NAMES[m] for m in ("m23_norm", "m23_literal") if trained(m) and better(m)]
        if not held:
            return "not held"
        return f"held for {' and '.join(held)} ({what})"

    def faster(m: str) -> bool:
        return _clearly_above([steps_key(r) for r in sel["kaiming"]],
                              [steps_key(r) for r in sel[m]], 0.0)

    def lower(key: str, margin: float) -> Callable[[str], bool]:
        def check(m: str) -> bool:
            return _clearly_above([r[key] for r in sel["kaiming"]], [r[key] for r in sel[m]],
                                  margin)
        return check

    m23 = sel["m23_norm"] + sel["m23_literal"]
    he = sel["kaiming"]
    return [
        {"claim": f"15 vs 42 epochs to convergence (M23 vs He), {variant}",
         "measured": (f"steps to val loss {sz['target_val_loss']} (seeds that reached it in "
                      f"brackets): {cells('steps_to_target', '{:.0f}')} ({setting})"),
         "verdict": verdict(faster, "faster than He")},
        {"claim": f"final validation loss 0.0234 vs 0.0312, {variant}",
         "measured": (f"final val loss (nats/char): {cells('final_val_loss', '{:.3f}')} "
                      f"({setting})"),
         "verdict": verdict(lower("final_val_loss", 0.01),
                            "lower than He; the write-up's values are not comparable")},
        {"claim": f"gradient standard deviation 0.089 vs 0.412, {variant}",
         "measured": (f"std over training of the global gradient norm: "
                      f"{cells('grad_norm_std', '{:.3g}')} ({setting})"),
         "verdict": verdict(lower("grad_norm_std", 0.0), "lower than He")},
        {"claim": f"condition number 17.6 vs 145.2, {variant}",
         "measured": (f"median weight condition number at init: "
                      f"{cells('cond_init_median', '{:.3g}')} ({setting}); the M23 value is "
                      "fixed by construction (max/min modulus of the spectrum)"),
         "verdict": ("held at init, by construction" if (_mean_of(m23, "cond_init_median") or
                                                         math.inf) <
                     (_mean_of(he, "cond_init_median") or 0.0) else "not held")},
    ]


def _clearly_above(a: Sequence[float | None], b: Sequence[float | None],
                   margin: float = 0.05) -> bool:
    """Whether the mean of ``a`` exceeds the mean of ``b`` by more than ``margin`` and by more
    than the larger spread (population std) of the two (None and non-finite values dropped)."""
    ga = [v for v in a if v is not None and math.isfinite(v)]
    gb = [v for v in b if v is not None and math.isfinite(v)]
    if not ga or not gb:
        return False
    spread = max(statistics.pstdev(ga) if len(ga) > 1 else 0.0,
                 statistics.pstdev(gb) if len(gb) > 1 else 0.0)
    return statistics.fmean(ga) - statistics.fmean(gb) > max(margin, spread)


def claims_rows(parts: dict[str, Any], command: str) -> list[dict[str, str]]:
    """One row per claim of the write-up: claim, measured (with spread), verdict, command."""
    rows: list[dict[str, str]] = []
    tf = parts.get("transformer")
    if tf:
        for variant in dict.fromkeys(r["variant"] for r in tf["runs"]):
            rows.extend(_tf_claims(tf, variant))
    prop = parts.get("propagation")
    if prop:
        deep = max(prop["sizes"]["depths"])
        cells = []
        verdict_ok = True
        for scheme in ("m23_norm", "m23_literal", "kaiming"):
            sel = _select(prop["runs"], arch="mlp", nonlinearity="relu", depth=deep,
                          scheme=scheme)
            cells.append(f"{scheme} {_ms([r['act_ratio'][-1] for r in sel])}")
            if scheme == "m23_norm":
                verdict_ok = all(0.1 < r["act_ratio"][-1] < 10 for r in sel)
        lit_dead = all(r["act_ratio"][-1] < 1e-6 for r in _select(
            prop["runs"], arch="mlp", nonlinearity="relu", depth=deep, scheme="m23_literal"))
        rows.append({
            "claim": "signal preserved through 100+ layers",
            "measured": (f"output/input norm, plain ReLU MLP, {deep} layers, width "
                         f"{prop['sizes']['mlp_width']}: " + "; ".join(cells)),
            "verdict": ("held for norm mode only" if verdict_ok and lit_dead else
                        "held" if verdict_ok else "not held")})
    res = parts.get("resources")
    if res:
        for claim, key in (("30% less GPU memory", "rss_peak_kib"),
                           ("18% lower inference latency", "latency_ms_median")):
            cells = []
            ratios = []
            for name in dict.fromkeys(r["model"] for r in res["runs"]):
                m = _select(res["runs"], model=name, scheme="m23_norm")
                k = _select(res["runs"], model=name, scheme="kaiming")
                if m and k and key in m[0]:
                    ratio = m[0][key] / k[0][key]
                    ratios.append(ratio)
                    cells.append(f"{name} {ratio:.2f}")
            if not cells:
                cells = ["not measured in this run"]
            big = [r for r in ratios if abs(r - 1) > 0.1]
            rows.append({
                "claim": claim,
                "measured": ("M23 norm / He " + ("peak RSS (CPU; same parameter bytes)"
                             if key == "rss_peak_kib" else "median latency") + ": " +
                             ", ".join(cells)),
                "verdict": "not held (no difference beyond noise)" if ratios and not big
                else "see table" if ratios else "not measured"})
    proj = parts.get("project")
    if proj:
        for name in proj["sizes"]["models"]:
            psnr = {s: [r["final_psnr"] for r in _select(proj["runs"], model=name, scheme=s)]
                    for s in _NAMES}
            if not psnr["kaiming"]:
                continue
            held = [_NAMES[m] for m in ("m23_norm", "m23_literal")
                    if _clearly_above(psnr[m], psnr["kaiming"])]
            kind = "super-resolution" if name.startswith("sr") else "interpolation"
            rows.append({
                "claim": f"better {kind} PSNR ({name})",
                "measured": ("validation PSNR after "
                             f"{proj['sizes']['steps']} steps, {proj['sizes']['seeds']} seeds: " +
                             ", ".join(f"{_NAMES[s]} {_ms(v, '{:.2f}')} dB"
                                       for s, v in psnr.items())),
                "verdict": (f"held for {' and '.join(held)} (above He by more than the spread)"
                            if held else "not held")})
    for row in rows:
        row["command"] = command
    return rows


def _claims_md(rows: list[dict[str, str]]) -> str:
    lines = ["## Claims of the original write-up, measured", "",
             "| claim | measured (mean ± std over seeds) | held? | command |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['claim']} | {r['measured']} | {r['verdict']} | `{r['command']}` |")
    return "\n".join(lines) + "\n"


def _plots(parts: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[str] = []

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
        written.append(name)

    prop = parts.get("propagation")
    if prop:
        deep = max(prop["sizes"]["depths"])
        for key, ylabel, fname in (("act_ratio", "activation norm / input norm",
                                    "propagation_activations.png"),
                                   ("grad_norm", "weight-gradient norm",
                                    "propagation_gradients.png")):
            fig, axes = plt.subplots(2, 2, figsize=(11, 8), sharex=True)
            for ax, (arch, nonlin) in zip(axes.flat, [("mlp", "relu"), ("mlp", "tanh"),
                                                        ("cnn", "relu"), ("cnn", "tanh")]):
                for scheme in SCHEMES:
                    sel = _select(prop["runs"], arch=arch, nonlinearity=nonlin, depth=deep,
                                  scheme=scheme)
                    if not sel:
                        continue
                    arr = np.array([r[key] for r in sel], dtype=float)
                    with np.errstate(divide="ignore"):
                        geo = np.exp(np.log(np.maximum(arr, 1e-300)).mean(axis=0))
                    ax.semilogy(np.arange(1, arr.shape[1] + 1), geo, label=scheme,
                                color=_COLORS[scheme])
                ax.set_title(f"plain {arch.upper()}, {nonlin}, {deep} layers")
                ax.set_xlabel("layer")
                ax.set_ylabel(ylabel)
                ax.grid(True, which="major", alpha=0.3)
            axes.flat[0].legend(fontsize=8)
            save(fig, fname)
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for ax, nonlin in zip(axes, ("relu", "tanh")):
            for scheme in SCHEMES:
                sel = _select(prop["runs"], arch="mlp", nonlinearity=nonlin, depth=deep,
                              scheme=scheme)
                if sel:
                    svs = np.sort(np.asarray(sel[0]["jacobian_sv"]))[::-1]
                    ax.semilogy(np.arange(1, len(svs) + 1), np.maximum(svs, 1e-300),
                                label=scheme, color=_COLORS[scheme])
            ax.set_title(f"end-to-end Jacobian, MLP {nonlin}, {deep} layers, seed 0")
            ax.set_xlabel("index")
            ax.set_ylabel("singular value")
            ax.grid(True, alpha=0.3)
        axes[0].legend(fontsize=8)
        save(fig, "propagation_jacobian.png")
    tf = parts.get("transformer")
    if tf:
        variants = list(dict.fromkeys(r["variant"] for r in tf["runs"]))
        fig, axes = plt.subplots(1, len(variants), figsize=(5.5 * len(variants), 4),
                                 squeeze=False)
        for ax, variant in zip(axes[0], variants):
            for scheme in SCHEMES:
                sel = _select(tf["runs"], variant=variant, scheme=scheme)
                diverged = [r for r in sel if r["diverged_at"] is not None]
                for i, r in enumerate(r for r in sel if r["diverged_at"] is None):
                    xs, ys = zip(*r["val_curve"])
                    ax.plot(xs, ys, color=_COLORS[scheme], alpha=0.8,
                            label=scheme if i == 0 else None)
                if diverged:
                    # A run that diverged has no curve to draw; the legend says so.
                    ax.plot([], [], color=_COLORS[scheme], ls="--",
                            label=f"{scheme}: diverged {len(diverged)}/{len(sel)}")
            ax.axhline(tf["sizes"]["target_val_loss"], color="k", ls=":", lw=1)
            ax.legend(fontsize=7)
            ax.set_title(f"{tf['sizes']['layers']}-layer {variant} transformer")
            ax.set_xlabel("step")
            ax.set_ylabel("validation loss (nats/char)")
            ax.grid(True, alpha=0.3)
        save(fig, "transformer_val_loss.png")
    proj = parts.get("project")
    if proj:
        names = proj["sizes"]["models"]
        fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4), squeeze=False)
        for ax, name in zip(axes[0], names):
            for scheme in SCHEMES:
                for i, r in enumerate(_select(proj["runs"], model=name, scheme=scheme)):
                    xs, ys = zip(*r["psnr_curve"])
                    ax.plot(xs, ys, color=_COLORS[scheme], label=scheme if i == 0 else None)
            ax.set_title(name)
            ax.set_xlabel("step")
            ax.set_ylabel("validation PSNR (dB)")
            ax.grid(True, alpha=0.3)
        axes[0][0].legend(fontsize=8)
        save(fig, "project_psnr.png")
    return written


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _write_json(path: Path, data: Any) -> None:
    _write_text(path, json.dumps(data, indent=1, allow_nan=True) + "\n")


def summarize(out: Path, command: str) -> dict[str, Any]:
    """Rebuild ``results.json``, ``study.md``, ``claims.md`` and the plots from the part files
    in ``out``.

    Returns:
        The merged results (``{"parts": {...}, "claims": [...], "plots": [...]}``).
    """
    parts: dict[str, Any] = {}
    metas: list[tuple[str, dict[str, Any]]] = []
    for part in PARTS:
        files = sorted(out.glob(f"{part}_*.json")) if part == "transformer" else [
            out / f"{part}.json"]
        for path in files:
            if not path.is_file():
                continue
            data = json.loads(path.read_text(encoding="utf-8"))
            metas.append((path.stem, data.get("meta", {})))
            if part in parts:  # another transformer variant
                parts[part]["runs"] += data["runs"]
                parts[part]["sizes"]["variants"] += data["sizes"]["variants"]
            else:
                parts[part] = data
    rows = claims_rows(parts, command)
    plots = _plots(parts, out)
    lines = ["# Initialization study (`m23 study-init`)", ""]
    meta_lines = []
    for part, meta in metas:
        meta_lines.append(f"- {part}: sizes `{meta.get('sizes_name', '?')}`, "
                          f"{meta.get('wall_s', float('nan')):.0f} s wall time, torch "
                          f"{meta.get('torch', '?')}, {meta.get('threads', '?')} threads, "
                          f"{meta.get('finished', '?')}; command `{meta.get('command', '?')}`")
    lines += ["Runs:", *meta_lines, "", "Schemes: see the docstring of `training/study.py` "
              "(all weights set by each scheme; biases zero except `default`).", ""]
    builders = {"propagation": _prop_table, "transformer": _tf_table, "project": _proj_table,
                "resources": _res_table}
    for part, data in parts.items():
        lines += builders[part](data) + [""]
    lines += [f"![{p}]({p})" for p in plots] + [""]
    _write_text(out / "study.md", "\n".join(lines))
    _write_text(out / "claims.md", _claims_md(rows))
    merged = {"parts": parts, "claims": rows, "plots": plots}
    _write_json(out / "results.json", merged)
    return merged


def run_study(sizes: StudySizes, out: Path, parts: Sequence[str] = PARTS,
              command: str = "m23 study-init") -> dict[str, Any]:
    """Run the given parts into ``out`` (each ``<part>.json`` written when complete), then
    :func:`summarize`.

    Raises:
        ValueError: an unknown part.
    """
    for part in parts:
        if part not in PARTS:
            raise ValueError(f"unknown part {part!r}; choose from {', '.join(PARTS)}")
    out.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[str, str, StudySizes]] = []
    for part in parts:
        if part == "transformer":
            # One file per variant, so that variants can run in parallel processes.
            jobs += [(part, f"transformer_{v}", replace(sizes, tf_variants=(v,)))
                     for v in sizes.tf_variants]
        else:
            jobs.append((part, part, sizes))
    for part, fname, job_sizes in jobs:
        t0 = time.perf_counter()
        log.info("study part %s (%s sizes)", fname, sizes.name)
        data = _RUNNERS[part](job_sizes)
        data["meta"] = {"sizes_name": sizes.name, "wall_s": time.perf_counter() - t0,
                        "torch": torch.__version__, "threads": torch.get_num_threads(),
                        "cpus": os.cpu_count(), "command": command,
                        "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                        "all_sizes": asdict(job_sizes)}
        _write_json(out / f"{fname}.json", data)
    return summarize(out, command)


def main(argv: list[str]) -> int:
    """``m23 study-init [--quick] [--out DIR] [--parts ...] [--seeds N]``."""
    parser = argparse.ArgumentParser(
        prog="m23 study-init",
        description="Compare M23 (norm and literal), Kaiming, Xavier, orthogonal and PyTorch's "
                    "default initialization: signal propagation, a 24-layer transformer on "
                    "Python's documentation text, the project's models, memory and latency. "
                    "Writes JSON, PNG plots and Markdown tables into --out.")
    parser.add_argument("--quick", action="store_true", help="small sizes (a few minutes)")
    parser.add_argument("--out", default=None,
                        help="output folder (default: assets/results/study, or "
                             "runs/study-quick with --quick)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                        help="which parts to run (the summary uses every part file in --out)")
    parser.add_argument("--variants", nargs="+", choices=("plain", "standard"), default=None,
                        help="transformer variants to run (default: both)")
    parser.add_argument("--seeds", type=int, default=None, help="override the number of seeds")
    parser.add_argument("--summarize-only", action="store_true",
                        help="rebuild tables and plots from the part files in --out")
    args = parser.parse_args(argv)
    from app.cli import UserError

    sizes = QUICK if args.quick else FULL
    if args.seeds is not None:
        if args.seeds < 1:
            raise UserError(f"--seeds must be at least 1, got {args.seeds}")
        sizes = replace(sizes, seeds=args.seeds)
    if args.variants:
        sizes = replace(sizes, tf_variants=tuple(args.variants))
    if args.out is None:
        out = Path("runs/study-quick") if args.quick else DEFAULT_OUT
    else:
        out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    command = "m23 study-init" + (" --quick" if args.quick else "") + (
        f" --seeds {args.seeds}" if args.seeds is not None else "")
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise UserError("matplotlib is needed for the plots: pip install -e '.[study]'") from exc
    if args.summarize_only:
        if not any((out / f"{p}.json").is_file() for p in PARTS):
            raise UserError(f"no part files (*.json) in {out} to summarize")
        summarize(out, command)
        return 0
    t0 = time.perf_counter()
    run_study(sizes, out, args.parts, command)
    log.info("study written to %s in %.0f s", out, time.perf_counter() - t0)
    return 0
