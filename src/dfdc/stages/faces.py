"""The faces stage: crops of every indexed video of the configured splits (resumable)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from dfdc.core.config import Params, resolve_device
from dfdc.faces.batch import run_faces

__all__ = ["FacesResult", "run"]


@dataclass
class FacesResult:
    table: pd.DataFrame  # one row a crop
    status: pd.DataFrame  # one row a video: ok | no_face | unreadable, with a reason


def run(params: Params) -> FacesResult:
    index = pd.read_parquet(params.data.index_path)
    table = run_faces(index, params.faces, device=resolve_device(params.base.device))
    return FacesResult(table, pd.read_parquet(params.faces.status_path))
