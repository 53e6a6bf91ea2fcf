"""The m23 command: fast help, layering rules."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import REPO


def test_help_imports_no_torch() -> None:
    code = ("import sys, contextlib, io\n"
            "from app.cli import main\n"
            "buf = io.StringIO()\n"
            "with contextlib.redirect_stdout(buf):\n"
            "    try:\n        main(['--help'])\n    except SystemExit as e:\n"
            "        assert e.code == 0\n"
            "assert 'train' in buf.getvalue() and 'eval' in buf.getvalue()\n"
            "heavy = [m for m in ('torch', 'onnxruntime', 'PyQt6', 'cv2') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_m23init_imports_nothing_of_the_project() -> None:
    code = ("import sys, m23init\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('models', 'training', 'app')]\n"
            "assert not bad, bad\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_only_the_player_imports_qt() -> None:
    offenders = []
    for path in REPO.glob("*/**/*.py"):
        rel = path.relative_to(REPO)
        if rel.parts[0] in (".venv", "tests") or rel.parts[:2] == ("app", "player"):
            continue
        if re.search(r"^\s*(from|import)\s+PyQt6", path.read_text(encoding="utf-8"), re.M):
            offenders.append(str(rel))
    assert not offenders


def test_play_bad_arguments_exit_2_with_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "nope.mp4"
    res = subprocess.run([sys.executable, "-m", "app", "play", str(missing), "--screenshot",
                          str(tmp_path / "shot.png"), "--frames", "2"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "not found" in lines[0]
    assert not (tmp_path / "shot.png").exists()


def test_bench_commands_write_json(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from app.cli import main
    from training.costs import model_costs

    out = tmp_path / "init.json"
    assert main(["bench", "init", "--sizes", "32", "64", "--repeats", "1", "--json",
                 str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["size"] for r in rows] == [32, 64]
    assert all(r["m23_ms"] > 0 and r["orthogonal_ms"] > 0 for r in rows)
    cost = model_costs("interp_hybrid_tiny", 64, 64)
    assert cost["params"] > 1000 and cost["flops_per_output_px"] > 100


def test_bench_sr_writes_rows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from app.cli import main
    from app.export import export_onnx
    from models.registry import get_model

    export_onnx(get_model("sr_tiny_x2"), "sr_tiny_x2", tmp_path / "sr_x2.onnx")
    out = tmp_path / "sr.json"
    assert main(["bench", "sr", "--models", str(tmp_path), "--scales", "2", "--runs", "1",
                 "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert {r["res"] for r in rows} == {"360p", "480p", "720p"}
    assert len(rows) == 9 and all(r["ms"] > 0 for r in rows)
