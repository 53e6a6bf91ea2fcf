"""The initialization study (``m23 study-init``) on tiny sizes: every part runs and reports."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

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
