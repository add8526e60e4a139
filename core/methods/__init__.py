"""The closed registry of training methods: `method.type` → the module that runs it.

Modules are imported on use, so the API (which only needs the names) never imports torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from core.methods.base import TrainingContext, TrainingResult

METHODS: dict[str, str] = {
    "supervised": "core.methods.supervised",
}


def get_method(name: str) -> Callable[[TrainingContext], TrainingResult]:
    return importlib.import_module(METHODS[name]).run
