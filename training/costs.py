"""Parameter counts and FLOPs per output pixel of the registered models (``m23 bench models``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch

from models.registry import get_model, get_spec, list_models

__all__ = ["model_costs", "main"]


def model_costs(name: str, height: int = 480, width: int = 640) -> dict[str, Any]:
    """Parameters and FLOPs (torch.utils.flop_counter; grid_sample and resizes not counted)
    per output pixel of model ``name`` on one (height, width) input."""
    from torch.utils.flop_counter import FlopCounterMode

    spec = get_spec(name)
    model = get_model(name).eval()
    params = sum(p.numel() for p in model.parameters())
    x = torch.rand(1, 3, height, width)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        if spec.kind == "interp":
            f = torch.zeros(1, 2, height, width)
            out = model(x, x, 0.5, f, f)
        else:
            out = model(x)
    pixels = out.shape[-1] * out.shape[-2]
    return {"model": name, "kind": spec.kind, "scale": spec.scale, "params": params,
            "flops_per_output_px": counter.get_total_flops() / pixels,
            "fp16": spec.fp16, "size_multiple_of": spec.size.multiple_of,
            "classical_flow": spec.extra.get("classical")}


def main(argv: list[str] | None = None) -> int:
    """Print a table of every registered model's cost; ``--json PATH`` writes the rows."""
    import argparse

    p = argparse.ArgumentParser(prog="m23 bench models")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    rows = [model_costs(n) for n in list_models()]
    sys.stdout.write(f"{'model':<22}{'kind':<8}{'params':>10}{'FLOP/out px':>14}  classical flow\n")
    for r in rows:
        c = r["classical_flow"]
        if c is None:
            flow = "-"
        elif c.get("max_pixels"):
            flow = f"DIS {c['preset']}, finest level <= {c['max_pixels']:,} px"
        else:
            flow = f"DIS {c['preset']}, finest scale {c['finest_scale'] or 2}"
        sys.stdout.write(f"{r['model']:<22}{r['kind']:<8}{r['params']:>10,}"
                         f"{r['flops_per_output_px']:>14,.0f}  {flow}\n")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2))
    return 0
