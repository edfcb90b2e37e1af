"""The one checkpoint schema: what ``best.pt`` and ``last.pt`` hold, written and read here only.

``best.pt`` (what inference, the ensemble and the kernel load) rebuilds its model without
``params.yaml``::

    {"schema": 2, "kind": "frame" | "sequence" | ..., "fold": k, "epoch": e,
     "metrics": {...}, "config": {"run", "faces", "cv", "base", "data"}, "model": state_dict,
     "extra": {...}}   # kind-specific (a sequence model's embedder)

``last.pt`` adds the optimiser, scheduler, scaler, RNG, history and a key (:func:`config_hash`:
settings, training data and the code that trains), so an interrupted fold resumes, and a
finished one is kept, only when made under the same key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from dfdc.core.config import FacesConfig, Params, RunConfig, params_from_dict, to_dict
from dfdc.core.errors import UserError
from dfdc.core.layout import member_name
from dfdc.core.provenance import config_digest, training_data
from dfdc.core.torch_files import UnreadableFileError, load_torch_file, save_torch_file
from dfdc.kinds.registry import run_config_from_dict

log = logging.getLogger(__name__)

__all__ = [
    "SCHEMA",
    "Checkpoint",
    "CheckpointError",
    "Resume",
    "config_hash",
    "read_checkpoint",
    "read_resume",
    "resolved_config",
    "save_best",
    "save_last",
]

SCHEMA = 2


class CheckpointError(UserError, ValueError):
    """A file that is not a checkpoint of this schema; the message names it."""


def resolved_config(params: Params, run: RunConfig, folds: pd.DataFrame) -> dict:
    """What rebuilds the model without params.yaml (the run's and the faces settings), and
    what it was trained on (:func:`dfdc.core.provenance.training_data` of the folds)."""
    return {
        "run": to_dict(run),
        "faces": to_dict(params.faces),
        "cv": to_dict(params.cv),
        "base": to_dict(params.base),
        "data": training_data(params.data, folds),
    }


def config_hash(
    params: Params,
    run: RunConfig,
    fold: int,
    inputs: dict,
    code: str,
    max_batches: int | None = None,
) -> str:
    """The key ``last.pt`` is reused under (resumed, or kept when finished): it changes
    whenever something that shapes this fold's weights changes. The run's settings, the folds
    settings, the seed and the fold; the face settings its crops were made with; ``inputs``,
    what it trains from by content (the training loop's record of the data, tables and what
    the kind adds); ``code``, the fingerprint of the code that trains it
    (:func:`dfdc.core.fingerprint.code_digest`: drawing code, the CLI and comments are not in
    it); and a batch cap (a smoke run is not a full one)."""
    d = {
        "run": to_dict(run),
        "cv": to_dict(params.cv),
        "seed": params.base.seed,
        "fold": fold,
        "faces": to_dict(params.faces),
        "inputs": inputs,
        "code": code,
        "max_batches": max_batches,
    }
    d["cv"].pop("folds")
    return config_digest(d)


def _save(path: Path, obj: dict) -> None:
    save_torch_file(obj, path)


def save_best(
    path: Path,
    config: dict,
    fold: int,
    epoch: int,
    metrics: dict[str, float],
    model: torch.nn.Module,
    extra: dict | None = None,
) -> None:
    """``config``: the fold's :func:`resolved_config` (computed once a fit, not each epoch)."""
    _save(
        path,
        {
            "schema": SCHEMA,
            "kind": config["run"]["kind"],
            "fold": fold,
            "epoch": epoch,
            "metrics": metrics,
            "config": config,
            "model": model.state_dict(),
            "extra": extra or {},
        },
    )


@dataclass
class Checkpoint:
    """A ``best.pt`` as read back: the config it was made with, typed again."""

    path: Path
    kind: str
    fold: int
    run: RunConfig
    faces: FacesConfig  # the face settings its training crops were made with
    model: dict  # the state dict
    extra: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)  # what it was trained on (empty: not recorded)

    @property
    def name(self) -> str:
        return member_name(self.run.run, self.fold)


def read_checkpoint(path: str | Path) -> Checkpoint:
    path = Path(path)
    try:  # a file carrying code is refused there (UnsafeFileError) before any of it runs
        state = load_torch_file(path)
    except UnreadableFileError as exc:  # a truncated or foreign file: one line
        raise CheckpointError(f"{path}: not a readable checkpoint ({exc.reason})") from None
    if not isinstance(state, dict) or state.get("schema") != SCHEMA:
        found = state.get("schema") if isinstance(state, dict) else None
        raise CheckpointError(
            f"{path}: checkpoint schema {found!r}, expected {SCHEMA} (retrain: dvc repro train)"
        )
    cfg = state["config"]
    return Checkpoint(
        path,
        state["kind"],
        int(state["fold"]),
        run_config_from_dict(cfg["run"], source=str(path)),
        params_from_dict({"faces": cfg["faces"]}, source=str(path)).faces,
        state["model"],
        state.get("extra", {}),
        state.get("metrics", {}),
        cfg.get("data", {}),
    )


@dataclass
class Resume:
    """Where an interrupted fold stands."""

    epoch: int  # the next epoch to train
    best: dict
    best_epoch: int
    history: list


def save_last(
    path: Path,
    config_key: str,
    epoch: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    best: dict,
    best_epoch: int,
    history: list,
) -> None:
    _save(
        path,
        {
            "schema": SCHEMA,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "epoch": epoch,
            "best": best,
            "best_epoch": best_epoch,
            "history": history,
            "config_hash": config_key,
            "torch_rng": torch.get_rng_state(),
        },
    )


def read_resume(
    path: Path,
    config_key: str,
    epochs: int,
    fold: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    device: torch.device,
) -> Resume | None:
    """Restore a ``last.pt`` made under the same key into the given objects. An unfinished one
    resumes after its last epoch; a finished one comes back with no epoch left to train, so a
    stage that DVC reruns for another reason (drawing code, a notebook's text) keeps the fold's
    weights (delete ``last.pt`` to train again). None (train from the start) when there is
    none, the key changed, or it cannot be read (a run killed while the disk was full: the
    file is made again, not a reason for every later run to fail). One that holds code is
    refused, never overwritten."""
    if not path.exists():
        return None
    try:
        state = load_torch_file(path, map_location=device)
    except UnreadableFileError as exc:
        log.warning("fold %d: %s; starting over", fold, exc)
        return None
    if not isinstance(state, dict):
        log.warning("fold %d: %s is not a resume checkpoint; starting over", fold, path)
        return None
    if state.get("schema") != SCHEMA or state.get("config_hash") != config_key:
        log.info(
            "fold %d: %s was made with other settings, data or code; starting over", fold, path
        )
        return None
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["torch_rng"])
    if state["epoch"] >= epochs - 1:
        log.info("fold %d: %s is finished, with the same settings, data and code: kept", fold, path)
    else:
        log.info("fold %d: resuming after epoch %d", fold, state["epoch"])
    return Resume(state["epoch"] + 1, state["best"], state["best_epoch"], state["history"])
