"""The ``package`` section: the offline Kaggle kernel and its datasets."""

from __future__ import annotations

from dataclasses import dataclass

from dfdc.core.typed import ranged

__all__ = ["PackageConfig"]


@dataclass(frozen=True)
class PackageConfig:
    """The offline Kaggle kernel and its datasets (ids are <owner>/<slug>)."""

    owner: str = "your-kaggle-username"
    kernel_slug: str = "dfdc-workspace-inference"
    kernel_title: str = "DFDC workspace inference"
    models_dataset: str = "dfdc-workspace-models"
    models_title: str = "DFDC workspace models"
    code_dataset: str = "dfdc-workspace-code"
    code_title: str = "DFDC workspace code"
    # Wheels the Kaggle image lacks, fetched from the package registry at build time.
    extra_wheels: tuple[str, ...] = ("facenet-pytorch==2.5.3",)
    out_dir: str = "submissions/kernel"
    # Test videos timed on this machine, and how much faster a Kaggle GPU is taken to be.
    time_videos: int = ranged(4, 0, 10_000)
    kaggle_speedup: float = ranged(4.0, 0, 1000, lo_open=True)
