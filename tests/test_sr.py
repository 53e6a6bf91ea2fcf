"""Super-resolution: MATLAB resize, data, task, evaluation, tiling and the ONNX upscaler."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import textured, write_png

torch.set_num_threads(1)

# ---------------------------------------------------------------- resize (MATLAB imresize)


def test_cubic_kernel_values() -> None:
    from training.resize import cubic

    x = np.array([0.0, 0.25, 0.5, 1.0, 1.25, 1.5, 2.0, 2.5])
    # a = -0.5: 1.5|x|^3 - 2.5|x|^2 + 1 on [0, 1], -0.5|x|^3 + 2.5|x|^2 - 4|x| + 2 on (1, 2].
    want = [1.0, 0.8671875, 0.5625, 0.0, -0.0703125, -0.0625, 0.0, 0.0]
    np.testing.assert_allclose(cubic(x), want, atol=1e-12)
    np.testing.assert_allclose(cubic(-x), want, atol=1e-12)


def test_imresize_x2_down_known_values() -> None:
    from training.resize import imresize

    # Shrinking by 2 stretches the kernel to 8 taps: weights cubic((k + 0.5) / 2) / 2, i.e.
    # 0.43359375, 0.11328125, -0.03515625, -0.01171875 at distances 0.5, 1.5, 2.5, 3.5;
    # outside the signal the indices mirror (..., 2, 1, 1, 2, ...).
    impulse = np.zeros((1, 8))
    impulse[0, 3] = 1.0
    got = imresize(impulse, 0.5)
    assert got.shape == (1, 4) and got.dtype == np.float64
    np.testing.assert_allclose(got[0], [-0.03515625, 0.43359375, 0.11328125, -0.01171875],
                               atol=1e-12)
    ramp = np.arange(8, dtype=np.float64)[None, :]
    got = imresize(ramp, 0.5)[0]
    # The first output mixes mirrored samples: (2*-.0234 + 1*-.0703 + 1*.8672 + 2*.2266
    # + 3*-.0703 + 4*-.0234) / 2 = 0.44921875; the second sees sample 0 where a line would
    # have -1, at weight -0.01171875: 2.5 - 0.01171875; the rest by symmetry.
    np.testing.assert_allclose(got, [0.44921875, 2.48828125, 4.51171875, 6.55078125],
                               atol=1e-12)
    # A longer ramp is reproduced exactly away from the borders (centres at 2x + 0.5).
    got = imresize(np.arange(32, dtype=np.float64)[None, :], 0.5)[0]
    np.testing.assert_allclose(got[2:-2], 2 * np.arange(2, 14) + 0.5, atol=1e-12)


def test_imresize_constant_and_ramps() -> None:
    from training.resize import imresize

    const = np.full((13, 17, 3), 77.0)
    for scale in (2, 4, 0.5, 0.25, 0.37):
        out = imresize(const, scale)
        np.testing.assert_allclose(out, 77.0, atol=1e-9)
    yy, xx = np.mgrid[0:40, 0:48].astype(np.float64)
    ramp = 3.0 * xx + 2.0 * yy + 5.0
    up = imresize(ramp, 2)
    oy, ox = np.mgrid[0:80, 0:96].astype(np.float64)
    # Output pixel centre x maps to input (x + 0.5) / 2 - 0.5; linear data stays linear.
    want = 3.0 * ((ox + 0.5) / 2 - 0.5) + 2.0 * ((oy + 0.5) / 2 - 0.5) + 5.0
    np.testing.assert_allclose(up[4:-4, 4:-4], want[4:-4, 4:-4], atol=1e-9)
    down = imresize(ramp, 0.5)
    dy, dx = np.mgrid[0:20, 0:24].astype(np.float64)
    want = 3.0 * (2 * dx + 0.5) + 2.0 * (2 * dy + 0.5) + 5.0
    np.testing.assert_allclose(down[2:-2, 2:-2], want[2:-2, 2:-2], atol=1e-9)


def test_imresize_shapes_and_errors() -> None:
    from training.resize import imresize, imresize_u8, resize_weights

    img = np.random.default_rng(0).uniform(0, 255, (5, 7, 3))
    assert imresize(img, 2).shape == (10, 14, 3)
    assert imresize(img, 0.5).shape == (3, 4, 3)  # MATLAB: ceil(scale * size)
    assert imresize(img, output_shape=(4, 9)).shape == (4, 9, 3)
    assert imresize(img[..., 0], 4).shape == (20, 28)
    assert imresize(np.ones((1, 1)), 4).shape == (4, 4)
    u8 = imresize_u8(img, 2)
    assert u8.dtype == np.uint8 and u8.shape == (10, 14, 3)
    np.testing.assert_allclose(resize_weights(9, 4, 0.5).sum(1), 1.0)
    with pytest.raises(ValueError):
        imresize(img, 0)
    with pytest.raises(ValueError):
        imresize(img)
    with pytest.raises(ValueError):
        imresize(np.zeros((0, 4)), 2)


def test_bicubic_round_trip_beats_bilinear_on_smooth_images() -> None:
    from training.metrics import psnr_u8
    from training.sr_data import make_lr
    from training.sr_eval import baseline_sr_methods

    hr = textured(96, 128, seed=4)
    lr = make_lr(hr, 2)
    assert lr.shape == (48, 64, 3) and lr.dtype == np.uint8
    m = baseline_sr_methods(2)
    assert psnr_u8(m["bicubic"](lr), hr) > psnr_u8(m["bilinear"](lr), hr) > 25


# ---------------------------------------------------------------- data


def test_sr_dataset_shapes_ranges_and_determinism() -> None:
    from training.data import to_tensor
    from training.sr_data import Degradations, SRDataset, make_lr

    imgs = [textured(100, 120, seed=s) for s in range(2)]
    for scale in (2, 4):
        ds = SRDataset(imgs, scale, lr_patch=12, length=5, seed=3)
        item = ds[1]
        assert item["lr"].shape == (3, 12, 12) and item["gt"].shape == (3, 12 * scale,
                                                                        12 * scale)
        for v in item.values():
            assert v.dtype == torch.float32 and 0 <= float(v.min()) <= float(v.max()) <= 1
        assert torch.equal(ds[1]["gt"], item["gt"])
        # Clean LR is exactly the benchmark downscale of the crop.
        gt = (item["gt"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        assert torch.equal(to_tensor(make_lr(gt, scale)), item["lr"])
    always = Degradations(blur_prob=1.0, noise_prob=1.0, jpeg_prob=1.0)
    dirty = SRDataset(imgs, 2, lr_patch=16, length=3, seed=3, degradations=always)[0]
    clean = SRDataset(imgs, 2, lr_patch=16, length=3, seed=3)[0]
    assert torch.equal(dirty["gt"], clean["gt"])
    diff = float((dirty["lr"] - clean["lr"]).abs().mean())
    assert 0 < diff < 0.15  # visible, yet the same picture (this texture is busy)
    with pytest.raises(ValueError):
        Degradations(jpeg_prob=1.5)
    from training.data import DataError

    with pytest.raises(DataError, match="at least 96"):
        SRDataset([textured(64, 200)], 2, lr_patch=48)


def test_degrade_is_deterministic() -> None:
    from training.sr_data import Degradations, degrade

    lr = textured(20, 24, seed=2).astype(np.float64)
    deg = Degradations(blur_prob=1.0, noise_prob=1.0, jpeg_prob=1.0)
    a = degrade(lr, random.Random(5), deg)
    b = degrade(lr, random.Random(5), deg)
    assert a.dtype == np.uint8 and np.array_equal(a, b)


def test_collect_hr_images(tmp_path: Path) -> None:
    from training.data import DataError
    from training.sr_data import collect_hr_images

    write_png(tmp_path / "a" / "x.png", textured(64, 80, seed=1))
    write_png(tmp_path / "a" / "small.png", textured(20, 20, seed=2))
    write_png(tmp_path / "b" / "c" / "y.png", textured(70, 70, seed=3))
    (tmp_path / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    found = collect_hr_images([tmp_path], min_size=32)
    names = sorted(f.name for f in found)
    assert names == [f"{tmp_path.name}/a/x.png", f"{tmp_path.name}/b/c/y.png"]
    assert all(f.image.dtype == np.uint8 and f.image.shape[2] == 3 for f in found)
    with pytest.raises(DataError):
        collect_hr_images([tmp_path / "missing"])
    with pytest.raises(DataError):
        collect_hr_images([tmp_path], min_size=500)


# ---------------------------------------------------------------- evaluation


def _make_set(root: Path) -> Path:
    import cv2

    hr = root / "tiny" / "HR"
    write_png(hr / "a.png", textured(61, 83, seed=1))  # odd sizes: cropped to the scale
    write_png(hr / "b.png", textured(48, 40, seed=2))
    gray = cv2.cvtColor(textured(40, 52, seed=3), cv2.COLOR_RGB2GRAY)
    assert cv2.imwrite(str(hr / "gray.png"), gray)
    rgba = np.dstack([textured(44, 36, seed=4), np.full((44, 36), 128, np.uint8)])
    assert cv2.imwrite(str(hr / "rgba.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    return root / "tiny"


def _nearest(scale: int):  # type: ignore[no-untyped-def]
    def run(lr: np.ndarray) -> np.ndarray:
        return np.repeat(np.repeat(lr, scale, 0), scale, 1)

    return run


@pytest.mark.parametrize("scale", [2, 4])
def test_evaluate_sr_report(tmp_path: Path, scale: int) -> None:
    from training.sr_eval import (
        baseline_sr_methods,
        evaluate_sr,
        format_sr_table,
        load_sr_samples,
    )

    samples = load_sr_samples(_make_set(tmp_path), scale)
    assert len(samples) == 4
    for s in samples:
        assert s.hr.shape[2] == 3 and s.hr.shape[0] % scale == 0 and s.hr.shape[1] % scale == 0
        assert s.lr.shape == (s.hr.shape[0] // scale, s.hr.shape[1] // scale, 3)
    methods = {**baseline_sr_methods(scale), "nearest": _nearest(scale)}
    report = evaluate_sr(samples, methods, scale, set_name="tiny")
    assert set(report) == {"set", "scale", "n", "results"}
    assert report["scale"] == scale and report["n"] == 4 and report["set"] == "tiny"
    r = report["results"]
    assert set(r) == {"bicubic", "bilinear", "lanczos", "nearest"}
    assert all(set(v) == {"psnr", "ssim", "ms"} for v in r.values())
    assert r["bicubic"]["psnr"] > r["nearest"]["psnr"] + 0.5
    assert r["bicubic"]["ssim"] > r["nearest"]["ssim"]
    table = format_sr_table(report)
    assert "bicubic" in table and f"x{scale}" in table
    with pytest.raises(ValueError, match="returned"):
        evaluate_sr(samples, {"bad": lambda lr: lr}, scale)


def test_load_sr_samples_refuses_bad_input(tmp_path: Path) -> None:
    from training.data import DataError
    from training.sr_eval import load_sr_samples

    hr = tmp_path / "s" / "HR"
    write_png(hr / "ok.png", textured(32, 32))
    (hr / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    with pytest.raises(DataError, match="corrupt.png"):
        load_sr_samples(tmp_path / "s", 2)
    (hr / "corrupt.png").unlink()
    write_png(hr / "tiny.png", np.zeros((1, 1, 3), np.uint8))
    with pytest.raises(DataError, match="too small"):
        load_sr_samples(tmp_path / "s", 2)
    (hr / "tiny.png").unlink()
    assert len(load_sr_samples(hr, 4)) == 1  # the HR folder itself works too
    with pytest.raises(DataError):
        load_sr_samples(tmp_path / "nothing", 2)
    with pytest.raises(DataError):
        load_sr_samples(tmp_path / "s", 3)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        load_sr_samples(tmp_path / "empty", 2)


# ---------------------------------------------------------------- model


@pytest.mark.parametrize("name", ["sr_tiny_x2", "sr_tiny_x4", "sr_x2", "sr_x4"])
def test_sr_variants_declare_their_cost(name: str) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    from models.registry import get_model, get_spec

    spec = get_spec(name)
    model = get_model(name).eval()
    assert model.scale_factor == spec.scale
    assert sum(p.numel() for p in model.parameters()) == spec.extra["params"]
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(torch.rand(1, 3, 16, 16))
    assert fc.get_total_flops() / 256 == spec.extra["flops_per_px"]
    for h, w in ((1, 1), (1, 5), (7, 3)):  # any size
        with torch.no_grad():
            y = model(torch.rand(1, 3, h, w))
        assert y.shape == (1, 3, h * spec.scale, w * spec.scale)


def test_sr_net_init_and_write_up_form() -> None:
    from m23init import apply_m23_init, init_model
    from models.sr import SuperResolutionNet

    model = SuperResolutionNet()
    assert model.scale_factor == 2
    ref = {k: v.clone() for k, v in model.state_dict().items()}
    model.apply(apply_m23_init)  # the write-up's form still works
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())
    again = init_model(SuperResolutionNet(), scale="norm", seed=0, gain=lambda n, m: (
        0.01 if n == "tail" else 2**0.5))
    for k, v in again.state_dict().items():
        assert torch.equal(v, ref[k])
    x = torch.rand(1, 3, 12, 10)
    base = torch.nn.functional.interpolate(x, scale_factor=4, mode="bilinear")
    for tail in ("conv3", "conv1", "separable"):
        net = SuperResolutionNet(scale_factor=4, color_residual=True, tail=tail)
        with torch.no_grad():
            y = net(x)
        assert y.shape == (1, 3, 48, 40)
        assert float((y - base).abs().max()) < 0.05  # starts as bilinear
    with pytest.raises(ValueError, match="tail"):
        SuperResolutionNet(tail="conv5")


# ---------------------------------------------------------------- tiling and engines


@pytest.fixture(scope="module")
def sr_onnx(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    from app.export import export_onnx
    from models.registry import get_model

    model = get_model("sr_tiny_x2", init_seed=1).eval()
    with torch.no_grad():  # a residual that matters, so tiling errors would show
        g = torch.Generator().manual_seed(0)
        model.tail.weight.copy_(torch.randn(model.tail.weight.shape, generator=g) * 0.1)
    out = tmp_path_factory.mktemp("sr") / "sr_tiny_x2.onnx"
    export_onnx(model, "sr_tiny_x2", out)
    return out, model


def test_tiled_equals_whole_onnx(sr_onnx: tuple[Path, torch.nn.Module]) -> None:
    from app.engines import _to_nchw, create_session
    from app.tiling import tiled
    from app.upscale import OnnxUpscaler

    path, _ = sr_onnx
    sess = create_session(path, provider="cpu")

    def run_float(img: np.ndarray) -> np.ndarray:
        return sess.run(None, {"image": _to_nchw([img])})[0][0].transpose(1, 2, 0)

    img = textured(90, 130, seed=7)
    whole = run_float(img)
    for tile, overlap in ((32, 8), (40, 16), (17, 6)):
        parts = tiled(run_float, img, 2, tile, overlap)
        assert parts.shape == whole.shape
        assert float(np.abs(parts - whole).max()) < 1 / 255
    eng = OnnxUpscaler(path, provider="cpu", scale=2)
    tiled_eng = OnnxUpscaler(path, provider="cpu", tile=32, overlap=8)
    a, b = eng(img), tiled_eng(img)
    assert a.shape == (180, 260, 3) and a.dtype == np.uint8
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    # Above the pixel limit the engine tiles on its own.
    auto = OnnxUpscaler(path, provider="cpu", max_pixels=1000)
    assert np.abs(auto(img).astype(int) - a.astype(int)).max() <= 1


def test_tiled_equals_whole_torch(sr_onnx: tuple[Path, torch.nn.Module]) -> None:
    from app.tiling import tiled
    from training.sr_eval import TorchUpscaler

    _, model = sr_onnx
    up = TorchUpscaler(model)

    def run_float(img: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            return model(x)[0].permute(1, 2, 0).numpy()

    img = textured(70, 90, seed=8)
    whole = run_float(img)
    assert float(np.abs(tiled(run_float, img, 2, 24, 8) - whole).max()) < 1 / 255
    u8 = up(img)
    assert np.abs(tiled(up, img, 2, 24, 8).astype(int) - u8.astype(int)).max() <= 1
    with pytest.raises(ValueError):
        tiled(up, img, 2, 0)
    with pytest.raises(ValueError, match="returned"):
        tiled(lambda t: t, img, 2, 24)


def test_onnx_upscaler_bad_inputs(sr_onnx: tuple[Path, torch.nn.Module]) -> None:
    from app.engines import EngineError
    from app.upscale import OnnxUpscaler, benchmark_upscaler

    path, _ = sr_onnx
    eng = OnnxUpscaler(path, provider="cpu")
    assert eng.scale == 2
    gray = textured(9, 11)[..., 0]
    assert eng(gray).shape == (18, 22, 3)
    rgba = np.dstack([textured(9, 11), np.zeros((9, 11), np.uint8)])
    assert np.array_equal(eng(rgba), eng(rgba[..., :3]))
    assert eng(np.zeros((1, 1, 3), np.uint8)).shape == (2, 2, 3)
    assert eng(textured(7, 5)).shape == (14, 10, 3)
    for bad in (np.zeros((4, 4, 3), np.float32), np.zeros((0, 4, 3), np.uint8),
                np.zeros((4, 4, 2), np.uint8)):
        with pytest.raises(ValueError):
            eng(bad)
    with pytest.raises(EngineError, match="not 4"):
        OnnxUpscaler(path, provider="cpu", scale=4)
    with pytest.raises(EngineError):
        OnnxUpscaler(path.with_name("missing.onnx"))
    t = benchmark_upscaler(eng, 16, 24, runs=2, warmup=1)
    assert t["median_ms"] > 0


def test_upscale_module_imports_without_torch() -> None:
    import subprocess
    import sys

    from tests.conftest import REPO

    code = ("import sys; import app.upscale, app.tiling; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


# ---------------------------------------------------------------- task and training


def test_build_sr_task_checks_scale_and_kind() -> None:
    from training.loop import TrainConfig
    from training.sr_task import build_sr_task

    with pytest.raises(ValueError, match="upscales by 2"):
        build_sr_task(TrainConfig(task="sr", model="sr_tiny_x2", scale=4))
    with pytest.raises(ValueError, match="not a super-resolution"):
        build_sr_task(TrainConfig(task="sr", model="interp_hybrid_tiny", scale=2))
    with pytest.raises(ValueError, match="too small"):
        build_sr_task(TrainConfig(task="sr", model="sr_tiny_x2", scale=2, crop=8))


def test_build_sr_task_from_folders(tmp_path: Path) -> None:
    from training.loop import TrainConfig
    from training.sr_task import build_sr_task

    for i in range(24):
        write_png(tmp_path / "imgs" / f"{i:02d}.png", textured(48, 56, seed=i))
    cfg = TrainConfig(task="sr", model="sr_tiny_x4", scale=4, crop=32, batch=2, steps=2,
                      data=[str(tmp_path / "imgs")], extra={"val_every_nth": 6, "degrade": 0})
    task = build_sr_task(cfg)
    assert task.train_set[0]["lr"].shape == (3, 8, 8)
    assert task.train_set[0]["gt"].shape == (3, 32, 32)
    assert 1 <= len(task.val_items) <= 8
    v = task.val_items[0]
    assert v["gt"].shape[1:] == (48, 56) and v["lr"].shape[1:] == (12, 14)
    pred = task.forward(task.model, {"lr": v["lr"][None]})
    assert pred.shape == (1, 3, 48, 56)
    assert float(task.loss(pred, v["gt"][None]).detach()) > 0


def test_short_sr_training_on_builtin_set(tmp_path: Path) -> None:
    from training.loop import TrainConfig, train
    from training.sr_task import build_sr_task

    cfg = TrainConfig(task="sr", model="sr_tiny_x2", scale=2, steps=3, batch=2, crop=64,
                      workers=0, out=str(tmp_path / "run"), val_every=3, warmup=1,
                      amp=False)
    task = build_sr_task(cfg)
    state = train(cfg, task, progress=False)
    assert state["step"] == 3
    assert state["best_val_psnr"] is not None and np.isfinite(state["best_val_psnr"])
    assert (tmp_path / "run" / "last" / "model.safetensors").is_file()
    from training.sr_eval import load_sr_upscaler

    arch, up = load_sr_upscaler(tmp_path / "run" / "last", scale=2)
    assert arch == "sr_tiny_x2"
    assert up(textured(10, 12)).shape == (20, 24, 3)
    from training.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="x2"):
        load_sr_upscaler(tmp_path / "run" / "last", scale=4)
