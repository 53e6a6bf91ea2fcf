"""``m23 play``: the desktop player (the only code in the project that imports PyQt6).

Importing this package is cheap: PyQt6 loads inside :func:`main` (``app.player.cli``) and in the
submodules ``window`` and ``audio``. ``clock`` and ``session`` are free of Qt.
"""

from __future__ import annotations

__all__ = ["main"]


def main(argv: list[str]) -> int:
    """Entry point of ``m23 play``; returns the exit status."""
    from app.player.cli import main as run

    return run(argv)
