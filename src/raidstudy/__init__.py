"""raidstudy: interrupted-time-series and event-study evidence on anti-piracy enforcement.

The public entry points are imported lazily so that ``import raidstudy`` stays fast
(the CLI imports it on every call) and a module's heavy dependencies load only when used.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "ITS": "raidstudy.models.its",
    "ITSResults": "raidstudy.models.its",
    "validate_parameters": "raidstudy.study.parameters",
    "StudySpec": "raidstudy.study.parameters",
    "load_events": "raidstudy.data.events",
    "get_event": "raidstudy.data.events",
    "indicator_series": "raidstudy.data.indicators",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'raidstudy' has no attribute {name!r}")
