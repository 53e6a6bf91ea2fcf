"""app.pipeline: exact output times, scene cuts, and the live controls the player uses (settings
changed while running, seek, stats, passthrough when behind, stop, errors)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from app.pipeline import (
    BicubicUpscaler,
    DisInterpolator,
    Engines,
    Pipeline,
    PipelineError,
    SceneCutDetector,
    Settings,
    output_rate,
    output_time_base,
    parse_rate,
    plan_interval,
)
from app.video import Decoder, Frame
from tests.conftest import textured
from tests.test_render import make_video, moving_frames

F = Fraction


class Blend:
    """A real (if simple) interpolator: the linear blend; records its calls."""

    provider = "numpy blend"

    def __init__(self) -> None:
        self.calls: list[list[float]] = []

    def __call__(self, f0: np.ndarray, f1: np.ndarray, ts: Sequence[float]) -> list[np.ndarray]:
        self.calls.append(list(ts))
        return [np.rint((1 - t) * f0 + t * f1).astype(np.uint8) for t in ts]


def frames(n: int, h: int = 16, w: int = 24) -> list[Frame]:
    """n flat frames at 25 fps, grey level 10 * i."""
    return [Frame(np.full((h, w, 3), (10 * i) % 250, np.uint8), F(i, 25), index=i)
            for i in range(n)]


def test_plan_interval_exact() -> None:
    s3 = Settings(factor=3)
    assert plan_interval(F(0), F(1, 25), s3) == [(F(0), F(0)), (F(1, 75), F(1, 3)),
                                                 (F(2, 75), F(2, 3))]
    s60 = Settings(target_fps=F(60))
    # grid k/60 from anchor 0 inside [1/25, 2/25): 3/60 and 4/60
    assert plan_interval(F(1, 25), F(2, 25), s60, anchor=F(0)) == [(F(1, 20), F(1, 4)),
                                                                   (F(1, 15), F(2, 3))]
    # a grid time on the source frame passes it through (t = 0)
    assert plan_interval(F(1, 5), F(6, 25), s60, anchor=F(0))[0] == (F(1, 5), F(0))
    assert plan_interval(F(0), F(1), Settings()) == [(F(0), F(0))]
    with pytest.raises(PipelineError, match="non-increasing"):
        plan_interval(F(1), F(1), s3)


def test_time_base_and_rate() -> None:
    assert output_time_base(F(1, 12800), Settings(factor=2)) == F(1, 25600)
    assert output_time_base(F(1, 12800), Settings(target_fps=F(60))) == F(1, 38400)
    assert output_time_base(F(1, 24000), Settings(target_fps=F(60000, 1001))) == F(1, 120000)
    assert output_rate(F(24000, 1001), Settings(factor=2)) == F(48000, 1001)
    assert output_rate(F(25), Settings(target_fps=F(60))) == 60
    assert parse_rate("60000/1001") == F(60000, 1001) and parse_rate("59.94") == F(5994, 100)
    for bad in ("0", "-3", "x", "1/0"):
        with pytest.raises(PipelineError):
            parse_rate(bad)


def test_settings_validation() -> None:
    with pytest.raises(PipelineError, match="not both"):
        Settings(factor=2, target_fps=F(60))
    with pytest.raises(PipelineError, match="upscale"):
        Settings(upscale=3)
    with pytest.raises(PipelineError, match="factor"):
        Settings(factor=0)
    with pytest.raises(PipelineError, match="threshold"):
        Settings(scene_threshold=0)


def test_scene_cut_detector() -> None:
    a, b = textured(72, 128, seed=1), textured(72, 128, seed=2)
    shifted = np.roll(a, 3, axis=1)
    d = SceneCutDetector(0.15)
    assert d.score(a, a) == 0.0
    assert d.score(a, shifted) < 0.1
    assert d.score(a, b) > 0.15 and d.is_cut(a, b)
    assert not d.is_cut(a, shifted)


def test_pipeline_counts_and_kinds() -> None:
    blend = Blend()
    with Pipeline(frames(6), Engines(lambda: blend), Settings(factor=2)) as p:
        out = list(p)
        stats = p.stats()
    assert [f.pts for f in out] == [F(k, 50) for k in range(12)]
    assert [f.kind for f in out] == ["source", "generated"] * 5 + ["source", "repeat"]
    assert blend.calls == [[0.5]] * 5
    assert out[1].rgb[0, 0, 0] == 5  # halfway between 0 and 10
    assert (stats.source, stats.generated, stats.repeated, stats.output) == (6, 5, 1, 12)
    assert stats.ms["interpolate"] >= 0 and "decode" in stats.ms


def test_cut_repeats_the_nearer_frame() -> None:
    a, b = textured(36, 64, seed=3), textured(36, 64, seed=4)
    src = [Frame(x, F(i, 25), index=i) for i, x in enumerate([a, a, b, b])]
    blend = Blend()
    with Pipeline(src, Engines(lambda: blend), Settings(factor=4)) as p:
        out = list(p)
        assert p.stats().cuts == 1
    across = out[4:8]  # the interval a -> b
    assert [f.kind for f in across] == ["source", "repeat", "repeat", "repeat"]
    assert across[1].rgb is a and across[2].rgb is a and across[3].rgb is b
    assert len(blend.calls) == 2  # the two intervals without a cut


def test_settings_change_while_running() -> None:
    blend = Blend()
    gate = threading.Event()

    def source() -> Iterator[Frame]:
        for i, f in enumerate(frames(30)):
            if i == 5:
                gate.wait(10)  # let the consumer change the settings first
            yield f

    p = Pipeline(source(), Engines(lambda: blend, BicubicUpscaler), Settings(factor=2),
                 queue_size=1)
    with p:
        first = [p.read(timeout=10) for _ in range(4)]
        p.update(factor=4, upscale=2)
        gate.set()
        rest = list(p)
    assert all(f is not None and f.rgb.shape == (16, 24, 3) for f in first)
    assert rest[-1].rgb.shape == (32, 48, 3)
    assert blend.calls[-1] == [0.25, 0.5, 0.75]
    pts = [f.pts for f in first + rest if f is not None]
    assert pts == sorted(pts) and len(set(pts)) == len(pts)
    assert pts[-4:] == [F(29, 25) + F(k, 100) for k in range(4)]  # 4x tail at the end


def test_passthrough_when_behind() -> None:
    blend = Blend()
    p = Pipeline(frames(8), Engines(lambda: blend),
                 Settings(factor=2, passthrough_when_behind=True))
    p.set_behind(True)
    with p:
        out = list(p)
        s = p.stats()
    assert [f.kind for f in out] == ["source"] * 8 and blend.calls == []
    assert s.dropped == 8 and s.generated == 0  # 7 intervals and the tail


def test_seek_flushes_and_restarts_after_end(tmp_path: Path) -> None:
    path = make_video(tmp_path / "s.mp4", moving_frames(20), audio=False)
    with Pipeline(Decoder(path), Engines(DisInterpolator), Settings(factor=2),
                  queue_size=2) as p:
        got = [p.read(timeout=10) for _ in range(3)]
        assert [f.pts for f in got if f is not None] == [F(0), F(1, 50), F(1, 25)]
        p.seek(F(12, 25))
        after = p.read(timeout=10)
        assert after is not None and after.pts == F(12, 25) and after.kind == "source"
        rest = list(p)
        assert [f.pts for f in rest] == [F(12, 25) + F(k, 50) for k in range(1, 16)]
        p.seek(F(2, 25))  # after the end: decoding starts again
        again = p.read(timeout=10)
        assert again is not None and again.pts == F(2, 25)


def test_stop_while_blocked_and_errors() -> None:
    p = Pipeline(frames(500), Engines(Blend), Settings(factor=2), queue_size=1).start()
    time.sleep(0.2)  # every queue full: all stages blocked
    t0 = time.perf_counter()
    p.stop()
    assert time.perf_counter() - t0 < 5.0
    assert not any(t.is_alive() for t in p._threads)

    def broken(f0: np.ndarray, f1: np.ndarray, ts: Sequence[float]) -> list[np.ndarray]:
        raise ValueError("engine failed")

    with Pipeline(frames(5), Engines(lambda: broken), Settings(factor=2)) as q, \
            pytest.raises(ValueError, match="engine failed"):
        list(q)
    with Pipeline(frames(3), Engines(), Settings(factor=2)) as r, \
            pytest.raises(PipelineError, match="no interpolation model"):
        list(r)


def test_end_of_stream_is_sticky_until_a_seek(tmp_path: Path) -> None:
    # A reader that takes the end marker and asks again (the player's clock does, when a seek's
    # bookkeeping races with it) must see the end again, not wait forever.
    path = make_video(tmp_path / "e.mp4", moving_frames(6), audio=False)
    with Pipeline(Decoder(path), Engines(DisInterpolator), Settings(factor=2),
                  queue_size=2) as p:
        p.seek(F(10))  # past the end of a 6-frame clip
        assert p.read(timeout=10) is None
        assert p.read(timeout=1) is None and p.read(timeout=1) is None
        p.seek(F(0))
        first = p.read(timeout=10)
        assert first is not None and first.pts == F(0)
