"""Shared fixtures: everything runs on the CPU by default."""

from __future__ import annotations

import os

# Small tensors: one thread is faster than two on a shared 2-core machine, and keeps results
# reproducible (set before numpy and torch are imported).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def device() -> str:
    """Tests run on the CPU (set M23_TEST_DEVICE=cuda to use a GPU)."""
    return os.environ.get("M23_TEST_DEVICE", "cpu")


def textured(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth random RGB texture (uint8), good for flow and interpolation tests."""
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(max(2, h // 8), max(2, w // 8), 3), dtype=np.uint8)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(big)


def write_png(path: Path, img: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
