"""The ``evaluate`` section: the cross-dataset sets."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EvaluateConfig"]


@dataclass(frozen=True)
class EvaluateConfig:
    """Cross-dataset evaluation: labelled folders (any supported layout) the ensemble never
    trained on, scored by the evaluate stage."""

    sets: tuple[str, ...] = ()
    metrics_path: str = "metrics/eval.json"
    plots_dir: str = "metrics/eval"
