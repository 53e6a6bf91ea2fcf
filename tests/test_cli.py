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


def test_unavailable_command_says_so() -> None:
    res = subprocess.run([sys.executable, "-m", "app", "play"], cwd=REPO, capture_output=True,
                         text=True)
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1
