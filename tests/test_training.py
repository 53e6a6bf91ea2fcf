"""training/: data, losses, metrics, checkpoints, the loop (single process and DDP), eval."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from app.cli import main
from tests.conftest import REPO, textured, write_png
from training.checkpoint import CheckpointError, load_weights, save_checkpoint
from training.data import DataError, discover_sequences, interp_windows
from training.evaluate import load_eval_samples
from training.loop import TrainConfig, lr_at
from training.losses import census_loss, charbonnier, gradient_loss, interp_loss, log_mse, psnr
from training.metrics import psnr_u8, rgb_to_y, ssim_u8


def test_metrics_on_known_inputs() -> None:
    img = textured(64, 64)
    assert psnr_u8(img, img) == float("inf")
    assert ssim_u8(img, img) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    gray = np.full((128, 128, 3), 128.0)
    noisy = gray + rng.normal(0, 5.0, gray.shape)
    assert psnr_u8(noisy, gray) == pytest.approx(20 * np.log10(255 / 5.0), abs=0.05)
    assert ssim_u8(noisy, gray) < 0.9
    assert rgb_to_y(np.zeros((1, 1, 3)))[0, 0] == pytest.approx(16.0)
    assert rgb_to_y(np.full((1, 1, 3), 255.0))[0, 0] == pytest.approx(235.0)
    with pytest.raises(ValueError):
        psnr_u8(img, img[:10])


def test_losses() -> None:
    a = torch.rand(2, 3, 16, 16)
    assert float(charbonnier(a, a)) == pytest.approx(1e-3, rel=1e-3)
    assert float(gradient_loss(a, a)) == 0.0
    assert float(census_loss(a, a)) == 0.0
    b = a.clone()
    b[:, :, 8:] = 1 - b[:, :, 8:]
    assert float(census_loss(a, b)) > 0.01
    assert torch.allclose(psnr(a, a * 0 + a), torch.full((2,), 100.0))
    # log_mse is minus the mean PSNR / 10: noise of std 0.1 in one sample, 0.01 in the other
    noisy = a + torch.stack([torch.full((3, 16, 16), 0.1), torch.full((3, 16, 16), 0.01)])
    assert float(log_mse(noisy, a)) == pytest.approx(-(20.0 + 40.0) / 2 / 10, abs=1e-4)
    assert float(interp_loss(noisy, a, 0.0, base="psnr")) == pytest.approx(-3.0, abs=1e-4)
    with pytest.raises(ValueError, match="unknown loss"):
        interp_loss(a, a, base="l2")


def test_lr_schedule() -> None:
    cfg = TrainConfig(steps=1000, warmup=100, lr=1e-3, min_lr=1e-5)
    assert lr_at(0, cfg) == pytest.approx(1e-5)
    assert lr_at(99, cfg) == pytest.approx(1e-3)
    assert lr_at(1000, cfg) == pytest.approx(1e-5)
    assert lr_at(100, cfg) > lr_at(500, cfg) > lr_at(900, cfg)


def _make_clips(root: Path) -> None:
    for s in range(2):
        for i in range(1, 8):
            write_png(root / "sept" / f"s{s}" / f"im{i}.png", textured(48, 64, seed=10 * s + i))
    for i in range(1, 4):
        write_png(root / "trip" / "a" / f"im{i}.png", textured(48, 64, seed=100 + i))
    for i in range(5):
        write_png(root / "frames" / "clip" / f"{i:03d}.png", textured(48, 64, seed=200 + i))


def test_discover_sequences_and_windows(tmp_path: Path) -> None:
    _make_clips(tmp_path)
    seqs = discover_sequences(tmp_path)
    kinds = sorted(s.kind for s in seqs)
    assert kinds == ["frames", "septuplet", "septuplet", "triplet"]
    wins = interp_windows(seqs, gaps=(2, 4))
    # septuplet: gap 2 -> 5 windows x 1, gap 4 -> 3 windows x 3; frames (5): 3 + 1*3; triplet: 1
    assert len(wins) == 2 * (5 + 9) + (3 + 3) + 1
    assert {round(w.t, 2) for w in wins} == {0.25, 0.5, 0.75}


def test_downscale_augmentation_halves_windows(tmp_path: Path) -> None:
    from training.data import InterpDataset

    # Frames whose left half is 0 and right half 255: halved to 24x16, every 16-pixel crop
    # spans the edge; at full size (48x32) some crops fall on one side only.
    for i in range(1, 4):
        img = np.zeros((32, 48, 3), np.uint8)
        img[:, 24:] = 255
        write_png(tmp_path / "t" / "s" / f"im{i}.png", img)
    seqs = discover_sequences(tmp_path / "t")
    wins = interp_windows(seqs, gaps=(2,))
    halved = InterpDataset(seqs, wins, crop=16, length=20, downscale=1.0)
    for k in range(20):
        gt = halved[k]["gt"]
        assert gt.shape == (3, 16, 16)
        assert gt.min() == 0.0 and gt.max() == 1.0
    plain = InterpDataset(seqs, wins, crop=16, length=20, downscale=0.0)
    assert any(plain[k]["gt"].max() == plain[k]["gt"].min() for k in range(20))
    with pytest.raises(ValueError, match="probability"):
        InterpDataset(seqs, wins, crop=16, downscale=1.5)


def test_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        discover_sequences(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no samples"):
        discover_sequences(tmp_path / "empty")
    with pytest.raises(DataError, match="no triplets"):
        load_eval_samples(tmp_path / "empty")
    bad = tmp_path / "bad" / "s"
    write_png(bad / "im1.png", textured(32, 32))
    write_png(bad / "im2.png", textured(32, 40))
    write_png(bad / "im3.png", textured(32, 32))
    with pytest.raises(DataError, match="differ in size"):
        load_eval_samples(tmp_path / "bad")
    (bad / "im2.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="cannot decode"):
        load_eval_samples(tmp_path / "bad")
    with pytest.raises(DataError, match="septuplets"):
        load_eval_samples(tmp_path / "bad", factor=4)


def test_checkpoint_roundtrip_and_errors(tmp_path: Path) -> None:
    from models.registry import get_model

    model = get_model("interp_hybrid_tiny")
    save_checkpoint(tmp_path / "ck", model, "interp_hybrid_tiny", None, {"step": 3})
    other = get_model("interp_hybrid_tiny", init_seed=5)
    meta = load_weights(tmp_path / "ck", other, "interp_hybrid_tiny")
    assert meta["arch"] == "interp_hybrid_tiny"
    for k, v in model.state_dict().items():
        assert torch.equal(v, other.state_dict()[k])
    with pytest.raises(CheckpointError, match="architecture"):
        load_weights(tmp_path / "ck", get_model("interp_hybrid"), "interp_hybrid")
    with pytest.raises(CheckpointError, match="does not fit"):
        load_weights(tmp_path / "ck", get_model("interp_hybrid"))
    sd = model.state_dict()
    sd["flow.blocks.0.head.bias"][0] = float("nan")
    save_checkpoint(tmp_path / "nan", model, "interp_hybrid_tiny", None, {"step": 1})
    with pytest.raises(CheckpointError, match="non-finite"):
        load_weights(tmp_path / "nan", get_model("interp_hybrid_tiny"))
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(CheckpointError, match="cannot read"):
        load_weights(tmp_path / "junk.safetensors", model)


def test_train_builtin_then_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "interp", "--model", "interp_hybrid_tiny", "--steps", "3", "--batch", "2",
            "--out", str(out), "--workers", "0", "--no-progress", "--val-every", "3"]
    assert main(args) == 0
    state = json.loads((out / "last" / "state.json").read_text())
    assert state["step"] == 3
    assert np.isfinite(state["best_val_psnr"])
    assert (out / "last" / "model.safetensors").is_file()
    assert (out / "last" / "optim.safetensors").is_file()
    args[args.index("--steps") + 1] = "6"
    assert main([*args, "--resume"]) == 0
    state = json.loads((out / "last" / "state.json").read_text())
    assert state["step"] == 6
    rows = (out / "log.csv").read_text().strip().splitlines()
    assert rows[0].startswith("step,loss") and len(rows) >= 3


@pytest.mark.parametrize("arch", ["interp_hybrid_tiny", "interp_occ"])
def test_train_on_folders(tmp_path: Path, arch: str) -> None:
    _make_clips(tmp_path / "data")
    out = tmp_path / "run"
    rc = main(["train", "interp", "--data", str(tmp_path / "data"), "--model",
               arch, "--steps", "2", "--batch", "2", "--crop", "32",
               "--out", str(out), "--workers", "0", "--no-progress"])
    assert rc == 0
    assert json.loads((out / "last" / "state.json").read_text())["step"] == 2


def test_train_ddp_two_processes(tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", "29517", "-m", "app", "train", "interp", "--model",
           "interp_hybrid_tiny", "--steps", "3", "--batch", "2", "--out", str(out),
           "--workers", "0", "--no-progress"]
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads((out / "last" / "state.json").read_text())["step"] == 3


def test_eval_cli_and_bad_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from models.registry import get_model

    data = tmp_path / "set"
    base = textured(40, 56, seed=3)
    for s in range(2):
        for i in range(1, 4):
            write_png(data / f"s{s}" / f"im{i}.png", np.roll(base, 2 * i + s, axis=1))
    ck = tmp_path / "ck"
    save_checkpoint(ck, get_model("interp_hybrid_tiny"), "interp_hybrid_tiny", None, {})
    js = tmp_path / "r.json"
    assert main(["eval", "interp", "--data", str(data), "--checkpoint", str(ck),
                 "--json", str(js)]) == 0
    rep = json.loads(js.read_text())
    assert rep["n"] == 2
    assert set(rep["results"]) == {"interp_hybrid_tiny (torch)", "repeat", "linear_blend",
                                   "dis_ultrafast", "dis_medium"}
    assert rep["results"]["dis_ultrafast"]["psnr"] > rep["results"]["repeat"]["psnr"]
    capsys.readouterr()
    (tmp_path / "empty").mkdir()
    assert main(["eval", "interp", "--data", str(tmp_path / "empty"), "--checkpoint",
                 str(ck)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("m23: error:")
    nan_model = get_model("interp_hybrid_tiny")
    with torch.no_grad():
        next(nan_model.parameters()).fill_(float("nan"))
    save_checkpoint(tmp_path / "nanck", nan_model, "interp_hybrid_tiny", None, {})
    assert main(["eval", "interp", "--data", str(data), "--checkpoint",
                 str(tmp_path / "nanck")]) == 2
    sr = tmp_path / "srck"
    save_checkpoint(sr, get_model("sr_x2"), "sr_x2", None, {})
    assert main(["eval", "interp", "--data", str(data), "--checkpoint", str(sr)]) == 2
    assert "not interpolation" in capsys.readouterr().err
