"""A tiny model registry with keyword-only builders and declared size requirements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "SizeRequirements",
    "ModelSpec",
    "register_model",
    "get_model",
    "get_spec",
    "list_models",
]


@dataclass(frozen=True)
class SizeRequirements:
    """What input sizes a model accepts.

    Attributes:
        minimum: smallest height and width in pixels.
        multiple_of: height and width must be a multiple of this (1: any size).
    """

    minimum: int = 1
    multiple_of: int = 1

    def padding(self, height: int, width: int) -> tuple[int, int]:
        """Return (pad_bottom, pad_right) that make a (height, width) frame acceptable.

        Raises:
            ValueError: if height or width is not positive.
        """
        if height <= 0 or width <= 0:
            raise ValueError(f"frame size must be positive, got {height}x{width}")
        m = self.multiple_of
        ph = max(self.minimum, -(-height // m) * m) - height
        pw = max(self.minimum, -(-width // m) * m) - width
        return ph, pw


@dataclass(frozen=True)
class ModelSpec:
    """Metadata about a registered architecture variant."""

    name: str
    kind: str  # "interp" or "sr"
    builder: Callable[..., Any]
    size: SizeRequirements
    fp16: bool
    scale: int = 1
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    *,
    kind: str,
    size: SizeRequirements,
    fp16: bool,
    scale: int = 1,
    description: str = "",
    **extra: Any,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering a keyword-only builder under ``name``.

    Raises:
        ValueError: if ``name`` is already registered.
    """

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = ModelSpec(name, kind, fn, size, fp16, scale, description, dict(extra))
        return fn

    return wrap


def get_spec(name: str) -> ModelSpec:
    """Return the spec of a registered model.

    Raises:
        KeyError: with the list of known names, if ``name`` is unknown.
    """
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def get_model(name: str, **kwargs: Any) -> Any:
    """Build a registered model by name (keyword arguments go to its builder)."""
    return get_spec(name).builder(**kwargs)


def list_models(kind: str | None = None) -> list[str]:
    """Names of the registered models, optionally only those of one kind."""
    _ensure_loaded()
    return sorted(n for n, s in _REGISTRY.items() if kind is None or s.kind == kind)


def _ensure_loaded() -> None:
    # Importing the architecture modules registers their builders (explicit, no folder scan).
    from models import frame_generator, occlusion, sr  # noqa: F401
