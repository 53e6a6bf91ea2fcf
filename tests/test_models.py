"""models/: registry, warping, FrameGenerator, SuperResolutionNet."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.registry import SizeRequirements, get_model, get_spec, list_models, register_model
from models.warp import backward_warp, intermediate_flows

INTERP = ["interp_hybrid", "interp_hybrid_tiny", "interp_neural", "interp_occ", "interp_occ4"]


def test_registry_lists_and_refuses_duplicates() -> None:
    names = list_models()
    assert set(INTERP) <= set(names)
    assert {"sr_x2", "sr_x4"} <= set(list_models("sr"))
    with pytest.raises(ValueError, match="already registered"):
        register_model("sr_x2", kind="sr", size=SizeRequirements(), fp16=True)(lambda: None)
    with pytest.raises(KeyError, match="unknown model"):
        get_spec("no_such_model")


def test_size_requirements_padding() -> None:
    req = SizeRequirements(minimum=16, multiple_of=8)
    assert req.padding(17, 8) == (7, 8)
    assert req.padding(32, 40) == (0, 0)
    with pytest.raises(ValueError):
        req.padding(0, 5)


def test_backward_warp_identity_and_shift() -> None:
    img = torch.rand(1, 3, 12, 16)
    assert torch.allclose(backward_warp(img, torch.zeros(1, 2, 12, 16)), img, atol=1e-6)
    flow = torch.zeros(1, 2, 12, 16)
    flow[:, 0] = 2.0  # sample two pixels to the right
    out = backward_warp(img, flow)
    assert torch.allclose(out[..., :, :-2], img[..., :, 2:], atol=1e-5)


def test_intermediate_flows_midpoint() -> None:
    f01 = torch.randn(2, 2, 4, 4)
    f10 = -f01
    ft0, ft1 = intermediate_flows(f01, f10, torch.full((2, 1, 1, 1), 0.5))
    assert torch.allclose(ft0, -0.5 * f01)
    assert torch.allclose(ft1, 0.5 * f01)


@pytest.mark.parametrize("name", INTERP)
@pytest.mark.parametrize("size", [(37, 53), (64, 48)])
def test_frame_generator_odd_sizes(name: str, size: tuple[int, int], device: str) -> None:
    model = get_model(name).to(device).eval()
    h, w = size
    x0, x1 = torch.rand(2, 3, h, w, device=device), torch.rand(2, 3, h, w, device=device)
    f = torch.randn(2, 2, h, w, device=device)
    with torch.no_grad():
        y = model(x0, x1, torch.tensor([0.25, 0.75]), f, f)
    assert y.shape == (2, 3, h, w)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_frame_generator_default_t_and_errors() -> None:
    model = get_model("interp_neural").eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert model(x, x).shape == (1, 3, 32, 32)  # the write-up's generator(frame0, frame1)
    with pytest.raises(ValueError, match="t must be in"):
        model(x, x, 1.5)
    with pytest.raises(ValueError, match="flow01 and flow10"):
        get_model("interp_hybrid")(x, x, 0.5)
    with pytest.raises(ValueError):
        model(x, torch.rand(1, 3, 32, 30))


def test_untrained_hybrid_starts_at_the_classical_warp() -> None:
    """Output heads start near zero: the untrained hybrid is the classical warp-and-blend."""
    from tests.conftest import textured

    model = get_model("interp_hybrid").eval()
    x0 = torch.from_numpy(textured(40, 48)).permute(2, 0, 1)[None].float() / 255
    shift = 3.0
    flow01 = torch.zeros(1, 2, 40, 48)
    flow01[:, 0] = shift
    x1 = backward_warp(x0, -flow01)
    with torch.no_grad():
        y = model(x0, x1, 0.5, flow01, -flow01)
    ft0, ft1 = intermediate_flows(flow01, -flow01, torch.full((1, 1, 1, 1), 0.5))
    ref = 0.5 * backward_warp(x0, ft0) + 0.5 * backward_warp(x1, ft1)
    assert float((y - ref).abs().mean()) < 0.005


def test_models_are_m23_initialized() -> None:
    """Same seed, same weights; another seed, other weights (m23init keys on seed and name)."""
    a = get_model("interp_hybrid", init_seed=0).state_dict()
    b = get_model("interp_hybrid", init_seed=0).state_dict()
    c = get_model("interp_hybrid", init_seed=1).state_dict()
    k = "flow.blocks.0.enc.0.weight"
    assert torch.equal(a[k], b[k])
    assert not torch.equal(a[k], c[k])


@pytest.mark.parametrize("name,scale", [("sr_x2", 2), ("sr_x4", 4), ("sr_tiny_x2", 2)])
def test_sr_shapes(name: str, scale: int) -> None:
    model = get_model(name).eval()
    assert get_spec(name).scale == scale == model.scale_factor
    x = torch.rand(1, 3, 13, 17)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (1, 3, 13 * scale, 17 * scale)
    assert float(y.min()) >= 0 and float(y.max()) <= 1


def test_sr_starts_near_bilinear() -> None:
    model = get_model("sr_x2").eval()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        y = model(x)
    base = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear",
                                           align_corners=False)
    assert float((y - base).abs().mean()) < 0.05
    from models.sr import SuperResolutionNet

    with pytest.raises(ValueError):
        SuperResolutionNet(scale_factor=2, channels=0)
    with pytest.raises(ValueError):
        SuperResolutionNet(scale_factor=3)


def test_classical_flow_finds_a_shift() -> None:
    from models.classical import dis_flows, dis_interpolate
    from tests.conftest import textured

    img = textured(96, 128, seed=1)
    moved = np.roll(img, 4, axis=1)
    f01, f10 = dis_flows(img, moved)
    inner = (slice(16, -16), slice(16, -16))
    assert abs(float(np.median(f01[inner][..., 0])) - 4.0) < 0.5
    assert abs(float(np.median(f10[inner][..., 0])) + 4.0) < 0.5
    mid = dis_interpolate(img, moved, 0.5)
    truth = np.roll(img, 2, axis=1)
    err = np.abs(mid[inner].astype(int) - truth[inner].astype(int)).mean()
    blend_err = np.abs(((img.astype(int) + moved) // 2)[inner] - truth[inner]).mean()
    assert err < 0.5 * blend_err


def test_occlusion_features_flag_inconsistent_flow_and_leaving_samples() -> None:
    from models.classical import N_FEATURES, occlusion_features, warp_to_time
    from tests.conftest import textured

    h, w = 48, 64
    f0 = textured(h, w, seed=3)
    f1 = np.roll(f0, 4, axis=1)  # everything moves 4 px right
    f01 = np.zeros((h, w, 2), np.float32)
    f01[..., 0] = 4.0
    f10 = -f01.copy()
    f10[16:32, 24:40] = 0.0  # the backward flow disagrees in one 16x16 region
    f01[:, :8, 0] = 40.0  # frame 0 samples of the left border fall outside (x - 11)
    m0, m1, w0, w1 = warp_to_time(f0, f1, f01, f10, 0.5)
    feats = occlusion_features(f0, f1, f01, f10, m0, m1, w0, w1, 0.5, 8)
    assert feats.shape == (N_FEATURES, h // 8, w // 8) and feats.dtype == np.float32
    e1 = feats[1]  # frame 1's forward-backward inconsistency
    assert e1[2:4, 3:5].min() > 1.0 and e1[:, 6:].max() < 0.1
    assert feats[6][:, 0].min() > 0.9 and feats[6][:, 2:].max() == 0.0  # outside frame 0
    assert np.all(feats[-1] == 0.5)


@pytest.mark.parametrize("candidates", [2, 4])
def test_occlusion_fusion_starts_at_the_classical_blend_and_learns(candidates: int) -> None:
    """Untrained, the mask is about one half (with 4 candidates, about 5% goes to each extra
    one); a few steps teach it to prefer the frame whose warp is clean where the other shows an
    occluder."""
    from models.occlusion import OcclusionFusion
    from tests.conftest import textured

    torch.manual_seed(0)
    h, w = 64, 64
    model = OcclusionFusion(hidden=16, block=8, candidates=candidates)
    xs0, xs1 = [], []
    rng = np.random.default_rng(0)
    for i in range(4):
        f0 = textured(h, w, seed=10 + i)
        f1 = f0.copy()
        y, x = rng.integers(0, h - 24, 2)
        f1[y:y + 24, x:x + 24] = rng.integers(0, 256, (24, 24, 3))  # occluder in frame 1 only
        xs0.append(f0)
        xs1.append(f1)

    def t(a: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack(a)).permute(0, 3, 1, 2).float() / 255

    x0, x1 = t(xs0), t(xs1)
    zero = torch.zeros(4, 2, h, w)
    with torch.no_grad():
        y0 = model(x0, x1, 0.5, zero, zero)
    dev = (y0 - 0.5 * (x0 + x1)).abs()
    if candidates == 2:
        assert float(dev.mean()) < 0.005 and float(dev.max()) < 0.1
    else:  # the extra pair is a softer (half-resolution) version of the same blend
        assert float(dev.mean()) < 0.02 and float(dev.max()) < 0.2
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        loss = (model(x0, x1, 0.5, zero, zero) - x0).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], (losses[0], losses[-1])


def test_extra_candidates_follow_the_backward_flow() -> None:
    """For a uniform motion both extra candidates are the true middle frame (at half
    resolution); samples that leave the frame are counted."""
    import cv2

    from models.classical import N_EXTRA_FEATURES, extra_candidates, warp_to_time
    from tests.conftest import textured

    h, w = 48, 64
    f0 = textured(h, w, seed=4)
    f1 = np.roll(f0, 4, axis=1)  # everything moves 4 px right
    truth = np.roll(f0, 2, axis=1)
    f10 = np.zeros((h, w, 2), np.float32)
    f10[..., 0] = -4.0
    f01 = -f10
    f10[:, -8:, 0] = 60.0  # frame 0 samples of the right border fall outside
    _, _, w0, w1 = warp_to_time(f0, f1, f01, f10, 0.5)
    c2, c3, cues = extra_candidates(f0, f1, f10, w0, w1, 0.5, 8)
    assert c2.shape == c3.shape == (h // 2, w // 2, 3) and c2.dtype == np.uint8
    assert cues.shape == (N_EXTRA_FEATURES, h // 8, w // 8) and cues.dtype == np.float32
    half_truth = cv2.resize(truth, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    inner = (slice(4, -4), slice(4, -8))
    for c in (c2, c3):
        err = np.abs(c[inner].astype(int) - half_truth[inner].astype(int)).mean()
        assert err < 3.0, err
    assert cues[0][1:-1, 1:-2].max() < 0.1  # the two candidates agree inside
    # c2 leaves frame 0 on the right (and, by its 2 px motion, in its first column)
    assert cues[7][:, -1].min() > 0.9 and cues[7][:, 1:-2].max() == 0.0
    assert cues[0][:, -1].min() > cues[0][1:-1, 1:-2].max()  # and then disagrees with c3


def test_occlusion_fusion_rejects_bad_settings() -> None:
    from models.occlusion import OcclusionFusion

    with pytest.raises(ValueError, match="candidates"):
        OcclusionFusion(candidates=3)
    with pytest.raises(ValueError, match="even block"):
        OcclusionFusion(candidates=4, block=5)
