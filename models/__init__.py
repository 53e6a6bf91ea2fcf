"""Neural network modules of m23-spectrum.

Heavy submodules (torch) are imported lazily so that ``models.classical`` and
``models.registry`` stay usable without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "FrameGenerator",
    "OcclusionFusion",
    "OpticalFlowEstimator",
    "SuperResolutionNet",
    "SizeRequirements",
    "get_model",
    "get_spec",
    "list_models",
    "register_model",
]

_LAZY = {
    "FrameGenerator": "models.frame_generator",
    "OcclusionFusion": "models.occlusion",
    "OpticalFlowEstimator": "models.flow",
    "SuperResolutionNet": "models.sr",
    "SizeRequirements": "models.registry",
    "get_model": "models.registry",
    "get_spec": "models.registry",
    "list_models": "models.registry",
    "register_model": "models.registry",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")
