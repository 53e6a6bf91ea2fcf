"""Smoke tests of the m23init benchmark command (no timing assertions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from m23init.bench import main


def test_bench_writes_json_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "init.json"
    assert main(["--sizes", "64", "128", "--repeats", "1", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [row["size"] for row in rows] == [64, 128]
    for row in rows:
        assert set(row) == {"size", "m23_ms", "orthogonal_ms", "ratio"}
        assert row["m23_ms"] > 0 and row["orthogonal_ms"] > 0
        assert row["ratio"] == pytest.approx(row["m23_ms"] / row["orthogonal_ms"])
    table = capsys.readouterr().out
    assert "orthogonal_" in table and "ratio" in table
    assert len(table.strip().splitlines()) == 2 + 2


def test_bench_propagation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "prop.json"
    assert main(["--propagation", "--depth", "4", "--width", "64", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["depth"] == 4 and result["width"] == 64
    assert result["literal"] < 1e-3 < result["norm"]
    assert "literal" in capsys.readouterr().out


def test_bench_rejects_bad_arguments() -> None:
    with pytest.raises(SystemExit):
        main(["--repeats", "0"])
