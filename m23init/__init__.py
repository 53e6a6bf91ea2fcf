"""M23-Spectrum weight initialization.

The NumPy core (:mod:`m23init.spectrum`, :mod:`m23init.matrix`) is imported eagerly; the PyTorch
helpers (:mod:`m23init.torch_init`) are imported on first use, so ``import m23init`` does not
import torch.

Example:
    >>> from m23init import generate_m23_stable_spectrum, mgi_init_stable
    >>> spectrum = generate_m23_stable_spectrum(fan_in=512)
    >>> W = mgi_init_stable((256, 512))
    >>> W.shape, W.dtype
    ((256, 512), dtype('float32'))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from m23init.matrix import SCALES, calculate_gain, mgi_init_stable, scaled_spectrum
from m23init.spectrum import (
    condition_number,
    elkies_roots,
    generate_m23_stable_spectrum,
    m23_eigenvalues,
    tile_spectrum,
)

if TYPE_CHECKING:
    from m23init.jax_init import m23_jax
    from m23init.keras_init import M23Keras
    from m23init.torch_init import CONV_MODES, apply_m23_init, init_model, m23_, stable_seed

__all__ = [
    "CONV_MODES",
    "M23Keras",
    "SCALES",
    "apply_m23_init",
    "calculate_gain",
    "condition_number",
    "elkies_roots",
    "generate_m23_stable_spectrum",
    "init_model",
    "m23_",
    "m23_eigenvalues",
    "m23_jax",
    "mgi_init_stable",
    "scaled_spectrum",
    "stable_seed",
    "tile_spectrum",
]

_TORCH_NAMES = frozenset({"CONV_MODES", "apply_m23_init", "init_model", "m23_", "stable_seed"})
_JAX_NAMES = frozenset({"m23_jax"})
_KERAS_NAMES = frozenset({"M23Keras"})


def __getattr__(name: str) -> Any:
    """Imports the PyTorch, JAX or Keras helpers on first access."""
    if name in _TORCH_NAMES:
        module = importlib.import_module("m23init.torch_init")
        return getattr(module, name)
    if name in _JAX_NAMES:
        module = importlib.import_module("m23init.jax_init")
        return getattr(module, name)
    if name in _KERAS_NAMES:
        module = importlib.import_module("m23init.keras_init")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
