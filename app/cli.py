"""The ``m23`` command. Heavy imports (torch, onnxruntime, PyQt6) happen inside subcommands,
so ``m23 --help`` answers fast."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

__all__ = ["main", "build_parser", "UserError"]

log = logging.getLogger("m23")

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SHIPPED_INTERP_ONNX = ASSETS / "interp_occ4.onnx"


# Subcommands implemented in their own module: name -> (module with main(argv) -> int, help).
_DELEGATES = {
    "play": ("app.player", "the desktop player with live frame generation and upscaling"),
    "render": ("app.render", "interpolate and/or upscale a video file"),
    "study-init": ("training.study", "the initialization study (the write-up's claims)"),
}


class UserError(Exception):
    """An error with a message meant for the user (printed as one line, exit status 2)."""


def _add_train(sub: Any) -> None:
    p = sub.add_parser("train", help="train an interpolation or super-resolution model",
                       description="Train a model. With no --data, trains on a small built-in "
                       "synthetic set made from the shipped sample video.")
    p.add_argument("task", choices=["interp", "sr"])
    p.add_argument("--data", action="append", default=[], metavar="DIR",
                   help="folder of triplets/septuplets/frames/videos (repeatable)")
    p.add_argument("--model", default=None, help="registered architecture (see --list-models)")
    p.add_argument("--out", default=None, help="run folder (checkpoints, log.csv)")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=None,
                   help="training crop (HR crop for SR); default 192 (interp), 96/192 (SR x2/x4)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--ckpt-minutes", type=float, default=5.0)
    p.add_argument("--workers", type=int, default=1, help="data-loader processes")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--grad-weight", type=float, default=0.5)
    p.add_argument("--census-weight", type=float, default=0.0)
    p.add_argument("--loss", choices=["charbonnier", "psnr"], default="charbonnier",
                   help="interp: pixel term; psnr = mean per-sample log10(MSE), the eval metric")
    p.add_argument("--scale", type=int, default=2, choices=[2, 4], help="SR scale")
    p.add_argument("--degrade", type=float, default=1.0,
                   help="SR: multiplies the probabilities of blur, noise and JPEG (0: clean)")
    p.add_argument("--downscale", type=float, default=0.0,
                   help="interp: probability of halving a training window before the crop "
                        "(smaller motion, softer detail)")
    p.add_argument("--image-step", type=int, default=1,
                   help="SR: use every Nth frame of a clip as an HR image")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last")
    p.add_argument("--init-from", default=None, metavar="CKPT",
                   help="start from these weights (safetensors or checkpoint folder)")
    p.add_argument("--no-progress", action="store_true")


def _add_eval(sub: Any) -> None:
    p = sub.add_parser("eval", help="quality and speed against classical baselines")
    p.add_argument("task", choices=["interp", "sr"])
    p.add_argument("--data", required=True,
                   help="interp: folder of triplets or septuplets; sr: folder with HR/*.png")
    p.add_argument("--factor", type=int, default=2, choices=[2, 4], help="interp: 2x or 4x")
    p.add_argument("--scale", type=int, default=2, choices=[2, 4], help="sr: x2 or x4")
    p.add_argument("--tile", type=int, default=0, help="sr: tile size (0: whole frames)")
    p.add_argument("--checkpoint", default=None,
                   help="PyTorch weights (safetensors or checkpoint folder)")
    p.add_argument("--onnx", default=None,
                   help="ONNX model run with ONNX Runtime (default: the shipped model)")
    p.add_argument("--provider", default="auto", help="ONNX Runtime provider: auto, cpu, cuda, "
                   "tensorrt")
    p.add_argument("--model", default=None, help="architecture of --checkpoint")
    p.add_argument("--untrained", action="store_true",
                   help="interp: evaluate --model as initialized by m23init, without training "
                   "(for a hybrid model: its classical starting point), in PyTorch")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the report as JSON")
    p.add_argument("--threads", type=int, default=1,
                   help="threads for our model (ONNX Runtime intra-op or torch); 0: default")
    p.add_argument("--no-baselines", action="store_true")


def _add_export(sub: Any) -> None:
    p = sub.add_parser("export", help="export a checkpoint to ONNX, checked with ONNX Runtime")
    p.add_argument("task", choices=["interp", "sr"])
    p.add_argument("--checkpoint", required=True, help="safetensors file or checkpoint folder")
    p.add_argument("--model", default=None, help="architecture (default: from the checkpoint)")
    p.add_argument("-o", "--output", required=True, help="output .onnx path")
    p.add_argument("--scale", type=int, default=None, choices=[2, 4],
                   help="sr: the expected scale (checked against the checkpoint)")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--fp16", action="store_true", help="fp16 weights, float32 inputs/outputs")
    p.add_argument("--metrics", action="append", default=[], metavar="REPORT.json",
                   help="m23 eval reports to record in the sidecar metadata (repeatable)")
    p.add_argument("--overwrite", action="store_true")


_BENCHES = {
    "pipeline": "app.bench",
    "init": "m23init.bench",
    "models": "training.costs",
    "sr": "app.bench_sr",
    "engines": "app.bench_engines",
}


_BENCH_HELP = (
    "m23 bench [pipeline|init|models|sr] [options]; pipeline (the default): decode, "
    "interpolation, upscaling, encode and end-to-end render speed beside the classical "
    "baselines; init: m23init vs torch.nn.init.orthogonal_; models: parameters and FLOPs per "
    "output pixel of every registered model; sr: upscaling speed of the shipped models beside "
    "bicubic. Each takes --help.")


def _add_bench(sub: Any) -> None:
    p = sub.add_parser("bench", help="speed benchmarks (tables + JSON)", add_help=False,
                       description=_BENCH_HELP)
    p.add_argument("rest", nargs=argparse.REMAINDER, help="benchmark and its options")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``m23``."""
    parser = argparse.ArgumentParser(
        prog="m23", description="Frame generation and super-resolution for video.")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in _DELEGATES.items():
        p = sub.add_parser(name, help=text[1], add_help=False)
        p.add_argument("args", nargs=argparse.REMAINDER)
    _add_train(sub)
    _add_eval(sub)
    _add_export(sub)
    _add_bench(sub)
    return parser


def _cmd_train(a: argparse.Namespace) -> int:
    from training.loop import TrainConfig, train

    if a.task == "sr":
        model = a.model or f"sr_x{a.scale}"
        crop = a.crop or (96 if a.scale == 2 else 192)
        extra = {"degrade": a.degrade, "image_step": a.image_step}
    else:
        model = a.model or "interp_occ4"
        crop = a.crop or 192
        if not 0.0 <= a.downscale <= 1.0:
            raise UserError(f"--downscale must be in [0, 1], got {a.downscale}")
        extra = {"downscale": a.downscale}
    steps = a.steps if a.steps is not None else (200 if not a.data else 20_000)
    cfg = TrainConfig(
        task=a.task, model=model, data=list(a.data), out=a.out or f"runs/{a.task}",
        steps=steps, batch=a.batch, crop=crop, lr=a.lr, extra=extra,
        warmup=a.warmup if a.warmup is not None else min(300, max(1, steps // 10)),
        val_every=min(a.val_every, steps), ckpt_minutes=a.ckpt_minutes, workers=a.workers,
        threads=a.threads, seed=a.seed, resume=a.resume, init_from=a.init_from,
        grad_weight=a.grad_weight, census_weight=a.census_weight, loss=a.loss, scale=a.scale,
    )
    if cfg.steps < 1 or cfg.batch < 1 or cfg.crop < 32:
        raise UserError("--steps and --batch must be positive and --crop at least 32")
    try:
        if a.task == "sr":
            from training.sr_task import build_sr_task

            task = build_sr_task(cfg)
        else:
            from training.tasks import build_interp_task

            task = build_interp_task(cfg)
    except (KeyError, ValueError) as exc:
        raise UserError(str(exc.args[0]) if exc.args else str(exc)) from None
    state = train(cfg, task, progress=not a.no_progress)
    log.info("finished at step %d; best validation PSNR %s dB; checkpoints in %s",
             state["step"], state["best_val_psnr"], cfg.out)
    return 0


def _cmd_eval_sr(a: argparse.Namespace) -> int:
    from training.sr_eval import (
        baseline_sr_methods,
        evaluate_sr,
        format_sr_table,
        load_sr_samples,
        load_sr_upscaler,
    )

    samples = load_sr_samples(a.data, a.scale)
    methods: dict[str, Any] = {}
    if a.checkpoint and a.onnx:
        raise UserError("give --checkpoint or --onnx, not both")
    if a.checkpoint:
        import torch

        if a.threads > 0:
            torch.set_num_threads(a.threads)
        name, fn = load_sr_upscaler(a.checkpoint, a.model, a.scale)
        methods[f"{name} (torch)"] = fn
    else:
        from app.engines import EngineError
        from app.upscale import OnnxUpscaler

        path = Path(a.onnx) if a.onnx else ASSETS / f"sr_x{a.scale}.onnx"
        try:
            up = OnnxUpscaler(path, provider=a.provider, threads=a.threads, tile=a.tile,
                              scale=a.scale)
        except EngineError as exc:
            raise UserError(str(exc)) from None
        methods[f"{path.stem} (onnx)"] = up
    if not a.no_baselines:
        methods.update(baseline_sr_methods(a.scale))
    report = evaluate_sr(samples, methods, a.scale, set_name=_set_name(a.data))
    sys.stdout.write(format_sr_table(report) + "\n")
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=2))
    return 0


def _set_name(data: str) -> str:
    p = Path(data).resolve()
    return p.parent.name if p.name == "HR" else p.name


def _cmd_eval(a: argparse.Namespace) -> int:
    if a.task == "sr":
        return _cmd_eval_sr(a)
    from training.evaluate import (
        baseline_methods,
        evaluate_interp,
        format_table,
        load_eval_samples,
    )

    samples = load_eval_samples(a.data, a.factor)
    methods: dict[str, Any] = {}
    if a.checkpoint and a.onnx:
        raise UserError("give --checkpoint or --onnx, not both")
    if a.untrained:
        import torch

        from models.registry import get_model
        from training.inference import TorchInterpolator
        from training.tasks import classical_config

        if not a.model or a.checkpoint or a.onnx:
            raise UserError("--untrained needs --model and no --checkpoint or --onnx")
        if a.threads > 0:
            torch.set_num_threads(a.threads)
        try:
            fn = TorchInterpolator(get_model(a.model), classical_config(a.model))
        except KeyError as exc:
            raise UserError(str(exc.args[0])) from None
        methods[f"{a.model} untrained (torch)"] = fn
    elif a.checkpoint:
        import torch

        from training.inference import load_interpolator

        if a.threads > 0:
            torch.set_num_threads(a.threads)
        name, fn = load_interpolator(a.checkpoint, a.model)
        methods[f"{name} (torch)"] = fn
    else:
        from app.engines import EngineError, OnnxInterpolator

        path = Path(a.onnx) if a.onnx else SHIPPED_INTERP_ONNX
        try:
            eng = OnnxInterpolator(path, provider=a.provider, threads=a.threads)
        except EngineError as exc:
            raise UserError(str(exc)) from None
        methods[f"{eng.meta.get('arch', path.stem)} (onnx)"] = eng
    if not a.no_baselines:
        methods.update(baseline_methods())
    report = evaluate_interp(samples, methods, set_name=_set_name(a.data))
    report["factor"] = a.factor
    sys.stdout.write(format_table(report) + "\n")
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=2))
    return 0


def _cmd_export(a: argparse.Namespace) -> int:
    from app.export import ExportError
    from training.package import package_model

    out = Path(a.output)
    if out.suffix != ".onnx":
        raise UserError(f"output must end in .onnx: {out}")
    if out.exists() and not a.overwrite:
        raise UserError(f"{out} exists; pass --overwrite to replace it")
    try:
        sidecar = package_model(a.checkpoint, out, kind=a.task, arch=a.model, opset=a.opset,
                                fp16=a.fp16, reports=[Path(r) for r in a.metrics],
                                scale=a.scale)
    except ExportError as exc:
        raise UserError(str(exc)) from None
    log.info("wrote %s and %s", out, sidecar)
    return 0


def _run_module(module: str, argv: list[str]) -> int:
    """Run ``module.main(argv)`` (each delegate parses its own options)."""
    import importlib

    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == module or module.startswith(exc.name + ".")):
            raise UserError(f"'{module}' is not available in this version") from None
        raise
    return int(mod.main(argv))


def _cmd_bench(a: argparse.Namespace) -> int:
    rest = [x for x in a.rest if x != "--"]
    what = "pipeline"
    if rest and rest[0] in _BENCHES:
        what, rest = rest[0], rest[1:]
    elif rest and rest[0] in ("-h", "--help") and len(rest) == 1:
        sys.stdout.write(_BENCH_HELP + "\n")
        return 0
    elif rest and not rest[0].startswith("-"):
        raise UserError(f"unknown benchmark {rest[0]!r}; choose from {', '.join(_BENCHES)}")
    return _run_module(_BENCHES[what], rest)


def _is_user_error(exc: Exception) -> bool:
    """Errors meant for the user (one line, exit 2), checked by class name so that commands
    which do not need torch never import the modules that define the training errors."""
    names = {"UserError", "DataError", "CheckpointError", "EngineError", "VideoError",
             "PipelineError", "FileNotFoundError"}
    return any(c.__name__ in names for c in type(exc).__mro__)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``m23``; returns the exit status."""
    parser = build_parser()
    args = list(sys.argv[1:] if argv is None else argv)
    # Delegated commands parse their own options (argparse's REMAINDER would reject a leading
    # option such as --help), so split the command line at the command's name.
    cut = next((i for i, x in enumerate(args) if not x.startswith("-")), len(args))
    rest: list[str] = []
    if cut < len(args) and (args[cut] in _DELEGATES or args[cut] == "bench"):
        args, rest = args[:cut + 1], args[cut + 1:]
    a = parser.parse_args(args)
    if rest:
        a.rest = a.args = rest
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    handlers = {"train": _cmd_train, "eval": _cmd_eval, "bench": _cmd_bench,
                "export": _cmd_export}
    try:
        if a.command in _DELEGATES:
            return _run_module(_DELEGATES[a.command][0], [x for x in a.args if x != "--"])
        return handlers[a.command](a)
    except Exception as exc:
        if not _is_user_error(exc):
            raise
        sys.stderr.write(f"m23: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("m23: interrupted\n")
        return 130
