"""The data stage: materialise ``data/raw`` from the configured source and write the video
index (one row a video; unreadable files stay in it with a reason)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from dfdc.core.config import Params
from dfdc.core.io import write_parquet
from dfdc.dataset.index import build_index, collect_entries
from dfdc.dataset.sources import prepare_raw

log = logging.getLogger(__name__)

__all__ = ["DataResult", "run"]


@dataclass
class DataResult:
    index: pd.DataFrame
    index_path: Path


def run(params: Params) -> DataResult:
    cfg = params.data
    layout = prepare_raw(cfg, sample_workers=cfg.workers)
    entries = collect_entries(
        layout.train_root, layout.test_dir, layout.extra_roots, layout=layout.layout
    )
    index = build_index(
        entries, workers=cfg.workers, relative_to=Path.cwd(), listed_in=cfg.index_path
    )
    write_parquet(index, cfg.index_path)
    counts = index.groupby("split")["name"].count().to_dict()
    log.info("index: %d videos %s -> %s", len(index), counts, cfg.index_path)
    return DataResult(index, Path(cfg.index_path))
