"""Benchmarks: initialization speed against ``torch.nn.init.orthogonal_``, signal propagation.

Usage::

    python -m m23init.bench                      # sizes 1024 4096 8192, 3 repeats
    python -m m23init.bench --sizes 1024 4096 --json init.json
    python -m m23init.bench --threads 1          # on a CPU shared with other jobs
    python -m m23init.bench --propagation        # activation ratio after 10 ReLU layers

The timing table puts, for each square size, the median time of :func:`m23init.m23_` (float32,
CPU, keyed generator) beside the median time of ``torch.nn.init.orthogonal_`` on the same shape,
measured alternately in one run, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from m23init.matrix import calculate_gain

__all__ = ["main", "signal_propagation", "time_init"]


def signal_propagation(
    depth: int = 10,
    width: int = 256,
    scale: str = "norm",
    gain: float = math.sqrt(2.0),
    seed: int = 0,
    samples: int = 1024,
) -> float:
    """Ratio of activation to input norm after ``depth`` square layers with ReLU.

    ``h <- relu(W_l h)`` for ``l = 1..depth`` in float64, with ``W_l`` initialized by
    :func:`m23init.m23_` (``key=(seed, l)``), on ``samples`` standard Gaussian inputs
    (``torch.Generator`` seeded with ``seed``).

    Args:
        depth: number of layers.
        width: layer width.
        scale: ``"norm"`` or ``"literal"``.
        gain: the init's gain (``sqrt(2)`` compensates ReLU in ``"norm"`` mode).
        seed: seed of the inputs and the layers' keys.
        samples: number of input vectors.

    Returns:
        ``sqrt(sum ||h||^2 / sum ||x||^2)`` over the samples (the RMS norm ratio).
    """
    import torch

    from m23init.torch_init import m23_

    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(width, samples, generator=generator, dtype=torch.float64)
    h = x
    for layer in range(1, depth + 1):
        weight = torch.empty(width, width, dtype=torch.float64)
        m23_(weight, scale=scale, gain=gain, key=(seed, layer))
        h = torch.relu(weight @ h)
    return float((h.pow(2).sum() / x.pow(2).sum()).sqrt())


def time_init(size: int, repeats: int) -> dict[str, float]:
    """Median times (ms) of ``m23_`` and ``orthogonal_`` on a float32 ``(size, size)`` tensor.

    The two are run alternately, ``repeats`` times each, after a small warm-up.

    Returns:
        ``{"size", "m23_ms", "orthogonal_ms", "ratio"}``.
    """
    import torch

    from m23init.torch_init import m23_

    warm = torch.empty(64, 64)
    m23_(warm, key=0)
    torch.nn.init.orthogonal_(warm)
    m23_times: list[float] = []
    orth_times: list[float] = []
    for rep in range(repeats):
        tensor = torch.empty(size, size)
        start = time.perf_counter()
        m23_(tensor, key=(size, rep))
        m23_times.append(time.perf_counter() - start)
        del tensor
        tensor = torch.empty(size, size)
        start = time.perf_counter()
        torch.nn.init.orthogonal_(tensor)
        orth_times.append(time.perf_counter() - start)
        del tensor
    m23_ms = 1e3 * statistics.median(m23_times)
    orth_ms = 1e3 * statistics.median(orth_times)
    return {"size": size, "m23_ms": m23_ms, "orthogonal_ms": orth_ms, "ratio": m23_ms / orth_ms}


def _table(rows: Sequence[dict[str, float]], threads: int) -> list[str]:
    lines = [
        f"square float32 init on CPU ({threads} threads), median ms",
        f"{'size':>6} {'m23_':>10} {'orthogonal_':>12} {'ratio':>7}",
    ]
    for row in rows:
        lines.append(
            f"{int(row['size']):>6} {row['m23_ms']:>10.1f} {row['orthogonal_ms']:>12.1f} "
            f"{row['ratio']:>7.2f}"
        )
    return lines


def _propagation(depth: int, width: int, seed: int) -> tuple[dict[str, float], list[str]]:
    relu = calculate_gain("relu")
    results = {
        "literal": signal_propagation(depth, width, "literal", 1.0, seed),
        "norm": signal_propagation(depth, width, "norm", relu, seed),
    }
    lines = [
        f"activation norm / input norm after {depth} ReLU layers of width {width} (seed {seed})",
        f"  literal (spectral radius sqrt(2/fan_in)): {results['literal']:.3e}",
        f"  norm (gain sqrt(2)):                      {results['norm']:.3f}",
    ]
    return results, lines


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (``python -m m23init.bench``, ``m23 bench init``).

    Args:
        argv: arguments without the program name; ``None`` for ``sys.argv[1:]``.

    Returns:
        The exit status, 0.
    """
    parser = argparse.ArgumentParser(
        prog="python -m m23init.bench",
        description="Time m23_ against torch.nn.init.orthogonal_ on square float32 weights.",
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096, 8192])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="write the rows as JSON here")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (default: torch's)"
    )
    parser.add_argument(
        "--propagation",
        action="store_true",
        help="print the activation ratio after --depth ReLU layers instead of timing",
    )
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if any(size < 1 for size in args.sizes):
        parser.error("--sizes must be positive")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")

    if args.propagation:
        results, lines = _propagation(args.depth, args.width, args.seed)
        print("\n".join(lines))  # noqa: T201
        if args.json is not None:
            row = {"depth": args.depth, "width": args.width, "seed": args.seed, **results}
            args.json.write_text(json.dumps(row, indent=2) + "\n")
        return 0

    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    rows = [time_init(size, args.repeats) for size in args.sizes]
    print("\n".join(_table(rows, torch.get_num_threads())))  # noqa: T201
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
