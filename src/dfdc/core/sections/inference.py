"""The ``inference`` section: which engine and runtime score videos."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dfdc.core.typed import ranged

__all__ = ["InferenceConfig"]


@dataclass(frozen=True)
class InferenceConfig:
    """How videos are scored by ``dfdc predict``, ``dfdc evaluate``, the ensemble's test set,
    the robustness report and the Kaggle kernel: ``torch`` runs the checkpoints (the
    reference); ``onnx`` runs the export stage's ONNX files with ONNX Runtime; ``auto`` takes
    the faster at equal scores (onnx on a CPU, torch on a GPU)."""

    engine: Literal["auto", "torch", "onnx"] = "auto"
    export_dir: str = "submissions/export"  # the export stage's ONNX ensemble
    # What runs the ONNX graphs (benchmarks/predict.py measures both; docs/inference.md).
    runtime: Literal["onnxruntime", "openvino"] = "onnxruntime"
    threads: int = ranged(0, 0, 256)  # the runtime's intra-op threads (0: one a core)
