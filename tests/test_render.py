"""``m23 render`` end to end on small videos made here with PyAV (H.264 + AAC), with tiny ONNX
models exported here: frame counts, rates, exact timestamps, durations, audio, scene cuts,
upscaling, 10-bit input, and every bad input's one-line error with nothing left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.cli import main
from tests.conftest import REPO, textured

AUDIO_RATE = 16000


def moving_frames(n: int, h: int = 48, w: int = 64, seed: int = 0) -> list[np.ndarray]:
    """A textured picture panning right by 2 pixels a frame."""
    big = textured(h, w + 2 * n + 2, seed=seed)
    return [np.ascontiguousarray(big[:, 2 * i: 2 * i + w]) for i in range(n)]


def make_video(path: Path, frames: list[np.ndarray], rate: Fraction = Fraction(25),
               audio: bool = True, codec: str = "libx264", pix_fmt: str = "yuv420p",
               pts_ms: list[int] | None = None, crf: int = 10) -> Path:
    """Write ``frames`` (RGB uint8) as a video; with ``pts_ms``, at those times (VFR, time base
    1/1000); with an AAC mono sine track as long as the video."""
    import av

    c = av.open(str(path), "w")
    opts = {"crf": str(crf)} if codec == "libx264" else {}
    vs: Any = c.add_stream(codec, rate=rate, options=opts)
    h, w = frames[0].shape[:2] if frames else (48, 64)
    vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
    if pts_ms is not None:
        vs.codec_context.time_base = Fraction(1, 1000)
    if audio:
        aus = c.add_stream("aac", rate=AUDIO_RATE)
        aus.layout = "mono"
    for i, img in enumerate(frames):
        vf = av.VideoFrame.from_ndarray(img, format="rgb24")
        if pts_ms is not None:
            vf.pts, vf.time_base = pts_ms[i], Fraction(1, 1000)
        for p in vs.encode(vf):
            c.mux(p)
    for p in vs.encode(None):
        c.mux(p)
    if not frames:
        c.start_encoding()  # a file with a video stream and no frames
    if audio:
        dur = (Fraction(pts_ms[-1] + 40, 1000) if pts_ms else len(frames) / rate) or Fraction(1)
        ns = int(dur * AUDIO_RATE)
        x = (0.3 * np.sin(2 * np.pi * 440 * np.arange(ns) / AUDIO_RATE)).astype(np.float32)
        for k in range(0, ns, 1024):
            af = av.AudioFrame.from_ndarray(x[None, k:k + 1024], format="flt", layout="mono")
            af.sample_rate, af.pts = AUDIO_RATE, k
            for p in aus.encode(af):
                c.mux(p)
        for p in aus.encode(None):
            c.mux(p)
    c.close()
    return path


def read_video(path: Path) -> tuple[list[np.ndarray], list[Fraction], dict[str, Any]]:
    """Frames, exact pts, and facts (rate, size, duration, audio packet count)."""
    import av

    from app.video import Decoder

    d = Decoder(path)
    frames = list(d.frames())
    with av.open(str(path)) as c:
        audio = [p for p in c.demux(audio=0) if p.size] if c.streams.audio else []
    info = d.info
    return [f.rgb for f in frames], [f.pts for f in frames], {
        "rate": info.fps, "width": info.width, "height": info.height,
        "duration": info.duration, "audio_packets": len(audio),
        "audio_bytes": sum(p.size for p in audio)}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with tiny exported models: interpolation and x2 super-resolution, each with its
    sidecar (as ``m23 export`` writes them)."""
    from models.registry import get_model
    from training.checkpoint import save_checkpoint

    d = tmp_path_factory.mktemp("models")
    m = get_model("interp_hybrid_tiny", init_seed=3)
    save_checkpoint(d / "ck_i", m, "interp_hybrid_tiny", None, {"step": 1})
    assert main(["export", "interp", "--checkpoint", str(d / "ck_i"),
                 "-o", str(d / "interp_occ4.onnx")]) == 0
    s = get_model("sr_tiny_x2", init_seed=1)
    save_checkpoint(d / "ck_s", s, "sr_tiny_x2", None, {"step": 1})
    assert main(["export", "sr", "--checkpoint", str(d / "ck_s"),
                 "-o", str(d / "sr_x2.onnx")]) == 0
    return d


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 frames of 64x48 at 25 fps with AAC audio."""
    return make_video(tmp_path_factory.mktemp("clip") / "in.mp4", moving_frames(10))


def render(*args: str) -> int:
    return main(["render", *args, "--no-progress"])


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("factor", [2, 4])
def test_interpolate_n_timing_audio(clip: Path, models: Path, tmp_path: Path,
                                    factor: int) -> None:
    out = tmp_path / "out.mp4"
    assert render(str(clip), str(out), "--interpolate", str(factor), "--crf", "0",
                  "--models", str(models)) == 0
    src, src_pts, src_info = read_video(clip)
    frames, pts, info = read_video(out)
    assert len(frames) == factor * len(src)
    assert info["rate"] == 25 * factor
    # every output time exact: source times and k/N of each interval, the tail included
    assert pts == [Fraction(i, 25 * factor) for i in range(factor * len(src))]
    assert abs(info["duration"] - src_info["duration"]) <= Fraction(1, 25 * factor)
    assert info["audio_packets"] == src_info["audio_packets"] > 0
    assert info["audio_bytes"] == src_info["audio_bytes"]
    # source frames pass through (up to the codec's loss), generated ones differ from both
    for i in range(len(src)):
        assert np.abs(frames[factor * i].astype(int) - src[i]).mean() < 2.0
    mid = frames[factor // 2]
    assert np.abs(mid.astype(int) - src[0]).mean() > 3 * np.abs(
        frames[0].astype(int) - src[0]).mean()
    assert _files(tmp_path) == ["out.mp4"]


@pytest.mark.parametrize(("rate", "n"), [(Fraction(25), 10), (Fraction(24000, 1001), 12)])
def test_fps_60(models: Path, tmp_path: Path, rate: Fraction, n: int) -> None:
    src_path = make_video(tmp_path / "in.mp4", moving_frames(n), rate=rate)
    out = tmp_path / "out.mp4"
    assert render(str(src_path), str(out), "--fps", "60", "--models", str(models)) == 0
    _, src_pts, src_info = read_video(src_path)
    _, pts, info = read_video(out)
    duration = n / rate
    expected = -(-duration * 60 // 1)  # ceil: every 1/60 s in [0, duration)
    assert len(pts) == expected  # 25 fps x 10: 24; 23.976 fps x 12: 31 (12 * 1001 / 400 = 30.03)
    assert info["rate"] == 60
    assert [p * 60 for p in pts] == list(range(len(pts)))  # exactly k/60 (exact time base)
    assert abs(info["duration"] - src_info["duration"]) <= Fraction(1, 60)
    assert info["audio_packets"] == src_info["audio_packets"] > 0


def test_variable_frame_rate_follows_timestamps(models: Path, tmp_path: Path) -> None:
    times = [0, 40, 100, 120, 200, 240]
    src_path = make_video(tmp_path / "vfr.mkv", moving_frames(6), pts_ms=times, audio=False)
    _, src_pts, _ = read_video(src_path)
    assert src_pts == [Fraction(t, 1000) for t in times]
    out = tmp_path / "out.mkv"
    assert render(str(src_path), str(out), "--interpolate", "2", "--models", str(models)) == 0
    _, pts, _ = read_video(out)
    # midpoints of each interval; the tail repeats the last frame after half the last interval
    mids = [Fraction(a + b, 2000) for a, b in zip(times, times[1:], strict=False)]
    expected = sorted([Fraction(t, 1000) for t in times] + mids + [Fraction(260, 1000)])
    assert pts == expected


def test_scene_cut_gives_no_blended_frame(models: Path, tmp_path: Path) -> None:
    a, b = textured(48, 64, seed=11), textured(48, 64, seed=12)
    src_path = make_video(tmp_path / "cut.mp4", [a] * 4 + [b] * 4, crf=0)
    src, _, _ = read_video(src_path)
    da, db = src[0].astype(int), src[-1].astype(int)

    def nearest_error(f: np.ndarray) -> float:
        return min(float(np.abs(f.astype(int) - da).mean()),
                   float(np.abs(f.astype(int) - db).mean()))

    out = tmp_path / "out.mp4"
    assert render(str(src_path), str(out), "--interpolate", "2", "--crf", "0",
                  "--models", str(models)) == 0
    frames, _, _ = read_video(out)
    assert len(frames) == 16
    assert max(nearest_error(f) for f in frames) < 4.0
    # the same without detection blends across the cut (so the check above can fail)
    out2 = tmp_path / "out2.mp4"
    assert render(str(src_path), str(out2), "--interpolate", "2", "--crf", "0",
                  "--no-scene-detect", "--models", str(models)) == 0
    frames2, _, _ = read_video(out2)
    assert nearest_error(frames2[7]) > 10.0


def test_upscale_sizes(clip: Path, models: Path, tmp_path: Path) -> None:
    out = tmp_path / "up.mp4"
    assert render(str(clip), str(out), "--upscale", "2", "--interpolate", "2",
                  "--models", str(models)) == 0
    frames, _, info = read_video(out)
    assert (info["width"], info["height"]) == (128, 96) and len(frames) == 20
    assert frames[0].shape == (96, 128, 3)
    out4 = tmp_path / "up4.mp4"
    assert render(str(clip), str(out4), "--upscale", "4", "--sr-model", "bicubic") == 0
    _, _, info4 = read_video(out4)
    assert (info4["width"], info4["height"]) == (256, 192)


def test_odd_size_is_padded_to_even(models: Path, tmp_path: Path) -> None:
    src_path = make_video(tmp_path / "odd.mkv", [textured(33, 45, seed=i) for i in range(3)],
                          codec="ffv1", pix_fmt="yuv444p", audio=False)
    out = tmp_path / "out.mp4"
    assert render(str(src_path), str(out)) == 0
    _, _, info = read_video(out)
    assert (info["width"], info["height"]) == (46, 34)


def test_10bit_input_is_read_correctly(tmp_path: Path) -> None:
    from app.video import Decoder

    colours = [(200, 40, 40), (30, 160, 220), (128, 128, 128)]
    frames = [np.full((48, 64, 3), c, np.uint8) for c in colours]
    src_path = make_video(tmp_path / "ten.mkv", frames, codec="ffv1", pix_fmt="yuv420p10le",
                          audio=False)
    d = Decoder(src_path)
    assert d.info.pix_fmt == "yuv420p10le"
    got = [f.rgb for f in d.frames()]
    for g, c in zip(got, colours, strict=True):
        assert g.dtype == np.uint8
        assert np.abs(g.astype(int) - np.array(c)).max() <= 3


def test_container_that_cannot_hold_audio(clip: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.webm"
    args = [str(clip), str(out), "--codec", "libvpx-vp9", "--crf", "40"]
    assert render(*args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("m23: error:") and "cannot hold audio stream #1 (aac)" in err
    assert "--drop-audio" in err and len(err.splitlines()) == 1
    assert _files(tmp_path) == []
    assert render(*args, "--drop-audio") == 0
    _, _, info = read_video(out)
    assert info["audio_packets"] == 0 and _files(tmp_path) == ["out.webm"]


def _bad_inputs(tmp: Path, clip: Path) -> dict[str, tuple[list[str], str]]:
    corrupt = tmp / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes())
    truncated = tmp / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    audio_only = tmp / "audio.m4a"
    import av

    with av.open(str(audio_only), "w") as c:
        s = c.add_stream("aac", rate=AUDIO_RATE)
        af = av.AudioFrame.from_ndarray(np.zeros((1, 4096), np.float32), format="flt",
                                        layout="mono")
        af.sample_rate = AUDIO_RATE
        for p in [*s.encode(af), *s.encode(None)]:
            c.mux(p)
    empty = make_video(tmp / "empty.mkv", [], audio=True)  # a video track without frames
    existing = tmp / "existing.mp4"
    existing.write_bytes(b"keep")
    out = str(tmp / "out.mp4")
    return {
        "missing": ([str(tmp / "nope.mp4"), out], "input not found"),
        "corrupt": ([str(corrupt), out], "corrupt or truncated"),
        "truncated": ([str(truncated), out], "corrupt or truncated"),
        "no video": ([str(audio_only), out], "has no video stream"),
        "zero frames": ([str(empty), out], "no decodable video frames"),
        "output is input": ([str(clip), str(clip)], "is the input"),
        "existing": ([str(clip), str(existing)], "exists; pass --overwrite"),
        "no folder": ([str(clip), str(tmp / "no" / "out.mp4")], "no such folder"),
        "folder is a file": ([str(clip), str(existing / "out.mp4")], "no such folder"),
        "unknown container": ([str(clip), str(tmp / "out.xyz")], "unknown container"),
        "upscale 3": ([str(clip), out, "--upscale", "3"], "invalid choice: 3"),
        "interpolate 1": ([str(clip), out, "--interpolate", "1"], "must be 2 or more"),
        "bad fps": ([str(clip), out, "--fps", "fast"], "bad frame rate 'fast'"),
        "both": ([str(clip), out, "--fps", "60", "--interpolate", "2"], "not allowed with"),
        "codec": ([str(clip), out, "--codec", "nonsense"], "unknown video codec 'nonsense'"),
        "preset": ([str(clip), out, "--preset", "warp"], "unknown preset 'warp'"),
        "threshold": ([str(clip), out, "--interpolate", "2", "--interp-model", "dis",
                       "--scene-threshold", "2"], "scene threshold must be in (0, 1]"),
        "no models": ([str(clip), out, "--interpolate", "2", "--models", str(tmp / "none")],
                      "models folder not found"),
    }


def test_bad_inputs_one_line_nothing_left(clip: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    cases = _bad_inputs(tmp_path, clip)
    before = _files(tmp_path)
    for name, (args, message) in cases.items():
        assert render(*args) == 2, name
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("m23: error:"), (name, err)
        assert message in err, (name, err)
        assert _files(tmp_path) == before, name  # no output, no temporary file
    assert (tmp_path / "existing.mp4").read_bytes() == b"keep"


def test_overwrite_replaces_existing(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"old")
    assert render(str(clip), str(out), "--overwrite") == 0
    frames, _, _ = read_video(out)
    assert len(frames) == 10 and _files(tmp_path) == ["out.mp4"]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_leaves_nothing(tmp_path: Path) -> None:
    """SIGINT in the middle of a render: exit 130, neither OUTPUT nor a temporary file."""
    src_path = make_video(tmp_path / "long.mp4", moving_frames(60, 240, 320), audio=True)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "render", str(src_path), str(out_dir / "o.mp4"),
         "--interpolate", "8", "--interp-model", "dis", "--upscale", "4", "--sr-model",
         "bicubic", "--preset", "medium", "--no-progress"],
        env=env, cwd=REPO, stderr=subprocess.PIPE, text=True,
        # A suite started in the background (`cmd &` without job control) passes SIGINT on as
        # ignored, and Python then never raises KeyboardInterrupt: the child gets the default.
        preexec_fn=_default_sigint)
    deadline = time.monotonic() + 60
    while not any(out_dir.iterdir()) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "m23: interrupted" in err
    assert list(out_dir.iterdir()) == []


def test_render_path_imports_no_torch(clip: Path, models: Path, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from app.cli import main\n"
        f"rc = main(['render', {str(clip)!r}, {str(tmp_path / 'o.mp4')!r}, '--interpolate', "
        f"'2', '--upscale', '2', '--models', {str(models)!r}, '--no-progress'])\n"
        "assert rc == 0, rc\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o.mp4").is_file()


def test_bench_rows_and_table(models: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    import json

    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--sizes", "96x64", "--frames", "4", "--no-sample",
                 "--models", str(models), "--provider", "cpu", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    table = capsys.readouterr().out
    assert "render2x" in table and "dis ultrafast" in table and "real time" in table
    jobs = {(r["job"], r["method"]) for r in rows}
    for job in ("interp2x", "interp4x", "render2x", "render4x"):
        assert {(job, "ours"), (job, "dis ultrafast")} <= jobs
    assert {("upscale2x", "ours"), ("upscale2x", "bicubic"), ("decode", "pyav"),
            ("encode", "libx264 veryfast")} <= jobs
    for r in rows:
        assert set(r) >= {"job", "res", "method", "ms", "fps"} and r["res"] == "96x64"
        assert r["ms"] > 0 and r["fps"] == pytest.approx(1000 / r["ms"], rel=0.02)
        if r["job"].startswith("render"):
            factor = int(r["job"][6])
            assert r["realtime"] == pytest.approx(r["fps"] / (30 * factor), rel=0.02)
    assert main(["bench", "--models", str(tmp_path / "none")]) == 2
    assert "models folder not found" in capsys.readouterr().err
