"""The ``eda`` section: how much the EDA notebook draws."""

from __future__ import annotations

from dataclasses import dataclass

from dfdc.core.typed import ranged

__all__ = ["EdaConfig"]


@dataclass(frozen=True)
class EdaConfig:
    sample_frames: int = ranged(6, 1, 100)
    max_grid_videos: int = ranged(12, 1, 1000)
