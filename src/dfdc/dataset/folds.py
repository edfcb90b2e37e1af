"""Group k-fold for DFDC: an original and all of its fakes always land in the same fold.

A model that has seen an original (or another fake of it) in training recognises the person and
the scene, not the manipulation, and its validation score lies. The winners split by DFDC
folder (part): each part holds originals with their fakes. With too few parts for the folds,
groups are clusters of videos linked by ``original``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from dfdc.core.config import CvConfig
from dfdc.core.errors import UserError

log = logging.getLogger(__name__)

__all__ = ["FoldError", "check_folds", "make_folds", "original_clusters"]


class FoldError(UserError, ValueError):
    """A group crosses folds, or the data cannot be split as asked; the message says which."""


def _components(edges: list[tuple[str, str]], nodes: list[str]) -> dict[str, str]:
    """Connected components (union-find): node -> the smallest node name of its component."""
    parent: dict[str, str] = {n: n for n in nodes}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {n: find(n) for n in nodes}


def _original_edges(index: pd.DataFrame) -> list[tuple[str, str]]:
    """Links a video must share a fold through: its original, and its identity group (an
    FF++ pair TTT_SSS / SSS_TTT, a Celeb-DF identity) where the layout gives one."""
    edges = [
        (f"video:{n}", f"video:{o}")
        for n, o in zip(index["name"], index["original"], strict=True)
        if isinstance(o, str) and o
    ]
    if "group" in index:
        edges += [
            (f"video:{n}", f"group:{g}")
            for n, g in zip(index["name"], index["group"], strict=True)
            if isinstance(g, str) and g
        ]
    return edges


def _name(node: str) -> str:
    return node.split(":", 1)[1]


def original_clusters(index: pd.DataFrame) -> pd.Series:
    """Cluster id per video: connected components of the video -> original (and identity
    group) links."""
    nodes = [f"video:{n}" for n in index["name"]]
    comp = _components(_original_edges(index), nodes)
    return pd.Series([_name(comp[n]) for n in nodes], index=index.index, name="group")


def _is_dfdc(index: pd.DataFrame) -> pd.Series:
    """Rows whose ``part`` is a DFDC folder (indexes made before the dataset column: all)."""
    if "dataset" not in index:
        return pd.Series(True, index=index.index)
    return index["dataset"].fillna("dfdc") == "dfdc"


def make_folds(index: pd.DataFrame, cfg: CvConfig) -> pd.DataFrame:
    """Assign every labelled video a fold: ``name, fold, group, group_kind, label, part``."""
    # A dataset's own test split (FF++ test.json, Celeb-DF's list) never trains.
    split = index["split"] if "split" in index else pd.Series("train", index=index.index)
    train = index[index["label"].notna() & (split != "test")].reset_index(drop=True)
    if train.empty:
        raise FoldError("no labelled videos to split into folds")
    dfdc = _is_dfdc(train)
    n_parts = train.loc[dfdc, "part"].nunique()
    kind = cfg.group_by
    if kind == "auto":
        kind = "part" if n_parts >= cfg.n_folds else "original"
    if kind == "part":
        # DFDC parts, merged where a fake and its original sit in different parts; other
        # datasets' videos by their original and identity links.
        nodes = [f"video:{n}" for n in train["name"]]
        edges = [(v, f"part:{p}") for v, p, d in zip(nodes, train["part"], dfdc, strict=True) if d]
        comp = _components(edges + _original_edges(train), nodes)
        groups = pd.Series([_name(comp[n]) for n in nodes], index=train.index)
    else:
        groups = original_clusters(train)
    n_groups = groups.nunique()
    if n_groups < cfg.n_folds:
        raise FoldError(
            f"{n_groups} groups (by {kind}) cannot fill {cfg.n_folds} folds; lower cv.n_folds"
        )

    # Largest groups first, each to the fold with the fewest videos so far; ties broken by a
    # seeded shuffle so the split is reproducible but not alphabetical.
    sizes = groups.value_counts()
    rng = np.random.default_rng(cfg.seed)
    order = sorted(sizes.index, key=lambda g: (-sizes[g], rng.random()))
    load = np.zeros(cfg.n_folds, int)
    fold_of: dict[str, int] = {}
    for g in order:
        f = int(np.argmin(load))
        fold_of[g] = f
        load[f] += sizes[g]
    folds = pd.DataFrame(
        {
            "name": train["name"],
            "fold": groups.map(fold_of).astype(int),
            "group": groups,
            "group_kind": kind,
            "label": train["label"],
            "part": train["part"],
            "original": train["original"],
        }
    )
    check_folds(folds)
    log.info(
        "folds: %d videos, %d groups by %s, per fold %s", len(folds), n_groups, kind, load.tolist()
    )
    return folds


def check_folds(folds: pd.DataFrame) -> None:
    """Fail loudly if a group, or an original and one of its fakes, crosses folds."""
    per_group = folds.groupby("group")["fold"].nunique()
    crossing = per_group[per_group > 1]
    if len(crossing):
        raise FoldError(f"group {crossing.index[0]!r} crosses folds ({len(crossing)} groups do)")
    fold_of = dict(zip(folds["name"], folds["fold"], strict=True))
    for name, original in zip(folds["name"], folds["original"], strict=True):
        if isinstance(original, str) and original in fold_of and fold_of[original] != fold_of[name]:
            where = f"fold {fold_of[name]}, its original {original!r} in {fold_of[original]}"
            raise FoldError(f"fake {name!r} is in {where}")
