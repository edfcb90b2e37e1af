"""The ``data`` section: where the videos come from (the generated sample, Kaggle, a local
folder, FaceForensics++, Celeb-DF) and the index the data stage writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dfdc.core.competition import COMPETITION
from dfdc.core.typed import ranged

__all__ = ["DataConfig", "KaggleSourceConfig", "SampleConfig"]


@dataclass(frozen=True)
class SampleConfig:
    """The generated offline dataset: small, deterministic, in the exact DFDC layout."""

    seed: int = ranged(2020, 0, 2**32 - 1)
    parts: int = ranged(4, 1, 1000)
    reals_per_part: int = ranged(2, 1, 1000)
    test_reals: int = ranged(4, 0, 100_000)
    test_fakes: int = ranged(4, 0, 100_000)
    width: int = ranged(640, 32, 7680)
    height: int = ranged(360, 32, 7680)
    # Parts whose videos are stored portrait (height > width), as some DFDC clips are.
    portrait_parts: tuple[int, ...] = ranged((3,), 0, 1000)
    frames: int = ranged(60, 2, 10_000)
    fps: int = ranged(30, 1, 240)
    # Constant H.264 quantiser (see dfdc.core.video.write_video for why not CRF).
    qp: int = ranged(23, 0, 51)
    noise_sigma: float = ranged(2.5, 0, 64)


@dataclass(frozen=True)
class KaggleSourceConfig:
    competition: str = COMPETITION
    # Competition files to fetch; the full training set (470 GB) is not offered by the API.
    files: tuple[str, ...] = ("train_sample_videos", "test_videos", "sample_submission.csv")


@dataclass(frozen=True)
class DataConfig:
    # local: a dataset folder in any known layout (detected); ffpp / celebdf: local_path is a
    # FaceForensics++ / Celeb-DF root in that dataset's own layout.
    source: Literal["sample", "kaggle", "local", "ffpp", "celebdf"] = "sample"
    raw_dir: str = "data/raw"
    local_path: str = "../shared/data/dfdc"
    # More dataset folders (any known layout, detected) indexed with the source, e.g. FF++
    # beside DFDC; every row says its dataset.
    extra_paths: tuple[str, ...] = ()
    index_path: str = "data/interim/videos.parquet"
    # Processes that generate the sample and threads that probe videos.
    workers: int = ranged(2, 1, 256)
    sample: SampleConfig = field(default_factory=SampleConfig)
    kaggle: KaggleSourceConfig = field(default_factory=KaggleSourceConfig)
