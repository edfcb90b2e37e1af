"""The fitted ensemble as inference uses it: members' video scores -> the submitted probability.

Fitting lives in :mod:`dfdc.inference.fit`; this small module is what ``dfdc predict`` and the
kernel need, without the fitting code.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dfdc.core.io import write_json
from dfdc.core.layout import member_run
from dfdc.core.metrics import EPS

__all__ = ["Ensemble", "logit", "sigmoid"]


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


@dataclass
class Ensemble:
    """What turns per-run video scores into the submitted probability."""

    runs: list[str]
    weights: list[float]
    rule: str = "mean"
    faces_combine: str = "max"
    temperature: float = 1.0
    clip: float = 0.0
    # Frames a video is scored on, the count the calibration was fitted for (0: every frame
    # the models' faces settings sample).
    frames: int = 0

    def apply(self, scores: np.ndarray) -> np.ndarray:
        """``scores``: (videos, runs) -> probabilities: runs weighted, then the temperature
        and the clip. The one place the calibration is written (the web page's
        ``ensembleProb`` mirrors it, tested for parity)."""
        p = np.asarray(scores, float) @ np.asarray(self.weights, float)
        if self.temperature != 1.0:
            p = sigmoid(logit(p) / self.temperature)
        if self.clip > 0:
            p = np.clip(p, self.clip, 1 - self.clip)
        return p

    def _run_matrix(self, member_values: dict[str, object]) -> np.ndarray:
        """(items, runs): each run's members' values averaged (folds within a run)."""
        per_run: dict[str, list] = {}
        for name, value in member_values.items():
            per_run.setdefault(member_run(name), []).append(np.asarray(value, float))
        missing = [r for r in self.runs if r not in per_run]
        if missing:
            raise ValueError(f"the ensemble needs runs {missing}, which were not loaded")
        return np.stack([np.mean(per_run[r], axis=0) for r in self.runs], axis=-1)

    def prob(self, member_scores: dict[str, float]) -> float:
        """A video's probability from its members' video scores (member name -> score, as
        :class:`dfdc.inference.predict.VideoPrediction` holds them): folds averaged within a
        run, runs weighted, then temperature and clip."""
        return float(self.apply(self._run_matrix(member_scores)[None])[0])

    def frame_scores(self, frame_probs: dict[str, list[float]]) -> np.ndarray:
        """One score a crop: the members' frame scores put through what :meth:`prob` does to
        their video scores. A reading aid (the report's frames and timeline, the page's boxes,
        ``dfdc predict --json``'s ``frame_scores``): the video's probability comes from the
        members' video scores, not from these."""
        if not frame_probs:
            return np.zeros(0)
        return self.apply(self._run_matrix(frame_probs))

    def as_dict(self) -> dict:
        return asdict(self)

    def save(self, path: str | Path) -> None:
        write_json(self.as_dict(), path)

    @classmethod
    def load(cls, path: str | Path) -> Ensemble:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no fitted ensemble (run the ensemble stage)")
        raw = json.loads(path.read_text())
        if "faces" in raw:  # written before the key was named faces_combine
            raw["faces_combine"] = raw.pop("faces")
        return cls(**raw)
