"""The model kinds: a frame CNN and a sequence model over track embeddings, registered by name
(:mod:`dfdc.kinds.registry`); backbones, heads, checkpoints and the models folder's layout.

Importing the package imports no kind: :func:`get_kind` imports the one asked for.
"""

from __future__ import annotations

from dfdc.kinds.base import CropBatch, LoadedModel, ModelKind, Task, TrainContext
from dfdc.kinds.registry import get_kind, kind_names, register_kind, run_sections

__all__ = [
    "CropBatch",
    "LoadedModel",
    "ModelKind",
    "Task",
    "TrainContext",
    "get_kind",
    "kind_names",
    "register_kind",
    "run_sections",
]
