"""The initialization study (``m23 study-init``) on tiny sizes: every part runs and reports."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from training.study import QUICK, SCHEMES, initialize, run_study

TINY = replace(
    QUICK, seeds=1, prop_depths=(4, 8), prop_width=16, prop_batch=8, cnn_channels=4,
    cnn_size=6, cnn_batch=2, jac_width=8, tf_layers=3, tf_width=16, tf_heads=2, tf_ff=32,
    tf_seq=16, tf_batch=4, tf_steps=6, tf_val_every=3, tf_val_seqs=4, proj_steps=4,
    proj_val_every=2, proj_batch=1, proj_crop=32, res_reps=2, res_sr_size=32,
)


def test_study_all_parts_write_results(tmp_path: Path) -> None:
    run_study(TINY, tmp_path, command="test")
    for name in ("propagation.json", "results.json", "study.md", "claims.md"):
        assert (tmp_path / name).is_file(), name
    results = json.loads((tmp_path / "results.json").read_text())
    assert results  # a summary was built from the part files
    table = (tmp_path / "study.md").read_text()
    for scheme in SCHEMES:
        assert scheme in table
    assert list(tmp_path.glob("*.png")), "no plots written"
    assert "| claim |" in (tmp_path / "claims.md").read_text()


def test_literal_scale_vanishes_and_norm_mode_does_not(tmp_path: Path) -> None:
    run_study(replace(TINY, prop_depths=(12,)), tmp_path, ["propagation"], command="test")
    runs = json.loads((tmp_path / "propagation.json").read_text())["runs"]
    out = {r["scheme"]: r["act_ratio"][-1] for r in runs
           if r["arch"] == "mlp" and r["nonlinearity"] == "relu" and r["depth"] == 12}
    # The write-up's literal radius sqrt(2/fan_in) shrinks the signal geometrically with depth;
    # the norm-preserving mode keeps it of order one.
    assert out["m23_literal"] < 1e-3
    assert 0.2 < out["m23_norm"] < 5.0


def test_initialize_rejects_unknown_scheme() -> None:
    import torch.nn as nn

    with pytest.raises(ValueError):
        initialize(nn.Linear(4, 4), "nope", seed=0)


def _tf_run(scheme: str, seed: int, steps: int | None, loss: float | None,
            diverged: int | None = None) -> dict[str, object]:
    return {"variant": "standard", "scheme": scheme, "seed": seed, "steps_to_target": steps,
            "final_val_loss": loss, "grad_norm_std": None if diverged else 1.0,
            "cond_init_median": 17.6 if scheme.startswith("m23") else 99.0,
            "diverged_at": diverged, "val_curve": [[0, 4.5]]}


def _tf_part(runs: list[dict[str, object]]) -> dict[str, object]:
    return {"sizes": {"layers": 24, "steps": 600, "val_every": 30, "target_val_loss": 3.0},
            "runs": runs}


def test_claim_verdicts_follow_the_measurements() -> None:
    from training.study import _tf_claims, _weight_conds

    runs = [_tf_run("m23_literal", s, 300 + s, 2.5) for s in range(3)]
    runs += [_tf_run("m23_norm", s, None, 3.3) for s in range(3)]
    runs += [_tf_run("kaiming", s, None, 3.2 + 0.01 * s) for s in range(3)]
    runs += [_tf_run("default", s, 150, 2.2) for s in range(3)]
    rows = {r["claim"].split(" (")[0].split(",")[0]: r["verdict"]
            for r in _tf_claims(_tf_part(runs), "standard")}
    assert rows["15 vs 42 epochs to convergence"] == "held for M23 literal (faster than He)"
    assert rows["final validation loss 0.0234 vs 0.0312"].startswith("held for M23 literal")
    # He reaching the target first turns the verdict round.
    runs = [r if r["scheme"] != "kaiming" else {**r, "steps_to_target": 100} for r in runs]
    rows = {r["claim"].split(" (")[0]: r["verdict"]
            for r in _tf_claims(_tf_part(runs), "standard")}
    assert rows["15 vs 42 epochs to convergence"] == "not held"
    # A baseline that diverges cannot be beaten or lost to.
    runs = [r if r["scheme"] != "kaiming" else _tf_run("kaiming", 0, None, None, diverged=2)
            for r in runs]
    verdicts = [r["verdict"] for r in _tf_claims(_tf_part(runs), "standard")]
    assert verdicts[0].startswith("not testable: He diverges")
    # Condition numbers of weights that went non-finite are NaN, not an exception.
    model = torch.nn.Linear(4, 4)
    with torch.no_grad():
        model.weight.fill_(float("nan"))
    assert all(c != c for c in _weight_conds(model))
