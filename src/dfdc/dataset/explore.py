"""Tables and pictures for the EDA notebook, computed from the video index alone.

Kept out of the notebook so they are tested, and so they work on any index: the generated
sample, a local DFDC folder, or a metadata-only download where no video file is present.
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from dfdc.core.video import VideoError, even_indices, frame_count, iter_frames

log = logging.getLogger(__name__)

__all__ = [
    "difference_pairs",
    "fakes_per_original",
    "label_balance",
    "plot_difference",
    "plot_frame_grid",
    "plot_label_balance",
    "plot_properties",
    "problems",
]

PROPERTIES = ["width", "height", "fps", "frame_count", "duration", "bytes"]


def label_balance(index: pd.DataFrame) -> pd.DataFrame:
    """Videos per part and label, with the fake share (DFDC is about 5 fakes to 1 real)."""
    train = index[index["label"].notna()]
    table = train.pivot_table(
        index="part", columns="label", values="name", aggfunc="count", fill_value=0
    )
    for col in ("REAL", "FAKE"):
        if col not in table:
            table[col] = 0
    table = table[["REAL", "FAKE"]]
    table["fake_share"] = (table["FAKE"] / table.sum(axis=1).replace(0, np.nan)).round(3)
    return table


def fakes_per_original(index: pd.DataFrame) -> pd.DataFrame:
    """How many fakes each original has, and whether the original's file is in the data."""
    fakes = index[(index["label"] == "FAKE") & index["original"].notna()]
    counts = fakes.groupby("original")["name"].count().rename("fakes").to_frame()
    present = set(index.loc[index["readable"], "name"])
    counts["original_present"] = counts.index.isin(present)
    return counts.sort_values("fakes", ascending=False)


def problems(index: pd.DataFrame) -> pd.DataFrame:
    """Every unreadable or missing file, with its reason."""
    return index.loc[~index["readable"], ["name", "part", "label", "bytes", "reason"]].reset_index(
        drop=True
    )


def plot_label_balance(index: pd.DataFrame) -> plt.Figure:
    table = label_balance(index)
    fig, ax = plt.subplots(figsize=(max(5, 0.6 * len(table) + 2), 3.5))
    table[["REAL", "FAKE"]].plot.bar(stacked=True, ax=ax, color=["#4c9f70", "#d1495b"])
    ax.set_ylabel("videos")
    ax.set_title("Labels per part")
    fig.tight_layout()
    return fig


def plot_properties(index: pd.DataFrame) -> plt.Figure:
    ok = index[index["readable"]]
    fig, axes = plt.subplots(1, len(PROPERTIES), figsize=(3 * len(PROPERTIES), 2.8))
    for ax, col in zip(axes, PROPERTIES, strict=True):
        values = pd.to_numeric(ok[col], errors="coerce").dropna()
        if len(values):
            ax.hist(values, bins=min(20, max(3, values.nunique())), color="#30638e")
        ax.set_title(col)
    fig.suptitle(f"Probed properties ({len(ok)} readable videos)")
    fig.tight_layout()
    return fig


def _frames(path: str, n: int) -> list[np.ndarray]:
    try:
        return [f.image for f in iter_frames(path, even_indices(frame_count(path), n))]
    except VideoError as exc:
        log.warning("%s", exc)
        return []


def plot_frame_grid(
    index: pd.DataFrame, n_frames: int = 6, max_videos: int = 12, seed: int = 0
) -> plt.Figure | None:
    """A row of evenly spaced frames for each of a few readable videos, reals and fakes mixed."""
    ok = index[index["readable"]]
    if ok.empty:
        return None
    pick = ok.groupby("label", dropna=False, group_keys=False).apply(
        lambda g: g.sample(min(len(g), max(1, max_videos // 2)), random_state=seed)
    )
    pick = pick.head(max_videos)
    fig, axes = plt.subplots(
        len(pick), n_frames, figsize=(2.2 * n_frames, 1.5 * len(pick)), squeeze=False
    )
    for row, r in zip(axes, pick.itertuples(), strict=True):
        frames = _frames(r.path, n_frames)
        for ax, img in zip(row, frames + [None] * (n_frames - len(frames)), strict=True):
            if img is not None:
                ax.imshow(img)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(f"{r.name}\n{r.label}", fontsize=7)
    fig.tight_layout()
    return fig


def difference_pairs(index: pd.DataFrame) -> pd.DataFrame:
    """Fakes whose original is present and readable: the pairs a difference image can show."""
    ok = index[index["readable"]].set_index("name")
    fakes = ok[(ok["label"] == "FAKE") & ok["original"].isin(ok.index)]
    return pd.DataFrame({"fake": fakes.index, "original": fakes["original"].values})


def plot_difference(index: pd.DataFrame, max_pairs: int = 3) -> plt.Figure | None:
    """Original, fake and their absolute difference on one frame: where the fake was edited."""
    pairs = difference_pairs(index).head(max_pairs)
    if pairs.empty:
        return None
    paths = index.set_index("name")["path"]
    fig, axes = plt.subplots(len(pairs), 3, figsize=(10, 2.8 * len(pairs)), squeeze=False)
    for row, p in zip(axes, pairs.itertuples(), strict=True):
        orig = _frames(paths[p.original], 1)
        fake = _frames(paths[p.fake], 1)
        if not orig or not fake or orig[0].shape != fake[0].shape:
            continue
        diff = np.abs(orig[0].astype(np.int16) - fake[0].astype(np.int16)).sum(axis=2)
        for ax, img, title in zip(
            row, (orig[0], fake[0], diff), (p.original, p.fake, "|difference|"), strict=True
        ):
            ax.imshow(img, cmap="magma" if img.ndim == 2 else None)
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    return fig


def load_index(path: str | Path) -> pd.DataFrame:
    return pd.read_parquet(path)
