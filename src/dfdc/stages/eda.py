"""The eda stage: what the video index says about the data (its notebook, 00_eda, draws the
pictures from :mod:`dfdc.dataset.explore`)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from dfdc.core.config import Params
from dfdc.dataset import explore

__all__ = ["EdaResult", "run"]


@dataclass
class EdaResult:
    index: pd.DataFrame  # the video index
    counts: pd.DataFrame  # videos per split and label
    balance: pd.DataFrame  # labels per part
    fakes_per_original: pd.DataFrame
    problems: pd.DataFrame  # unreadable or missing files


def run(params: Params, index_path: str = "") -> EdaResult:
    """The tables of the EDA (``index_path``: another index than ``data.index_path``)."""
    index = explore.load_index(index_path or params.data.index_path)
    counts = index.groupby(["split", "label"], dropna=False)["name"].count().to_frame("videos")
    return EdaResult(
        index,
        counts,
        explore.label_balance(index),
        explore.fakes_per_original(index),
        explore.problems(index),
    )
