"""The compress stage: each video's crops re-cut from x264 re-encodes of it, one copy a level
of ``compress`` (:mod:`dfdc.faces.copies`), for training under compression and for the
c40-like validation copies. ``compress.when: auto`` makes them for real data only."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from dfdc.core.config import Params
from dfdc.faces.copies import run_copies

__all__ = ["run"]


def run(params: Params) -> pd.DataFrame:
    cfg = params.compress
    make = cfg.when == "always" or (cfg.when == "auto" and params.data.source != "sample")
    if not make:  # the copies table without rows: training and validation use no copies
        cfg = replace(cfg, train_crf=(), train_downscale=(), validate_crf=())
    faces = pd.read_parquet(params.faces.table_path)
    index = pd.read_parquet(params.data.index_path)
    f = params.faces
    return run_copies(index, faces, cfg, f.crop_size, f.crop_format, f.jpeg_quality)
