"""The masks stage: where each fake crop differs from its original's crop of the same frame
(:mod:`dfdc.masks.compute`), for the frame runs that ask (``train.masks``)."""

from __future__ import annotations

import pandas as pd

from dfdc.core.config import Params
from dfdc.masks.compute import MasksResult, build_masks

__all__ = ["MasksResult", "run"]


def run(params: Params) -> MasksResult:
    faces = pd.read_parquet(params.faces.table_path)
    index = pd.read_parquet(params.data.index_path)
    return build_masks(faces, index, params.masks)
