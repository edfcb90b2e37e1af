"""The stages layer: one module a DVC stage, named as the stage, each a thin
``run(params, ...) -> Result`` that its ``dfdc`` command and its notebook both call.

No stage module imports another; what stages share lives in the libraries below
(``dfdc.faces``, ``dfdc.masks``, ``dfdc.inference``, ``dfdc.reports``, ...). The CLI builds its
stage commands from :data:`STAGES`, and the DVC deps test reads it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

__all__ = ["STAGES", "Stage", "stage_module"]


@dataclass(frozen=True)
class Stage:
    module: str  # the stage's module, imported only when its command runs
    help: str
    notebook: str | None = None  # the notebook DVC runs it through (papermill)
    fold: bool = False  # one fold a run: ``--fold K``
    smoke: bool = False  # ``--smoke``: a few batches or videos, for tests of the wiring
    # Its output holds the whole package (the kernel's wheel): its code is every module.
    ships: bool = False


STAGES: dict[str, Stage] = {
    "data": Stage("dfdc.stages.data", "materialise data/raw and write the video index"),
    "eda": Stage("dfdc.stages.eda", "what the video index says (tables; pictures in the notebook)",
                 "notebooks/00_eda.py"),
    "faces": Stage("dfdc.stages.faces", "extract face crops for the indexed videos (resumable)",
                   "notebooks/10_extract_faces.py"),
    "folds": Stage("dfdc.stages.folds", "split the labelled videos into group k-folds"),
    "masks": Stage("dfdc.stages.masks",
                   "difference masks: where each fake crop differs from its original's"),
    "compress": Stage("dfdc.stages.compress",
                      "compressed copies of every video's crops (x264 re-encodes, aligned)"),
    "train": Stage("dfdc.stages.train", "train one fold of the frame run (train section)",
                   "notebooks/20_train_fold.py", fold=True, smoke=True),
    "train_sequence": Stage("dfdc.stages.train_sequence",
                            "train one fold of the sequence run (sequence section)",
                            "notebooks/20_train_fold.py", fold=True, smoke=True),
    "ensemble": Stage("dfdc.stages.ensemble",
                      "fit the ensemble out of fold and write the submission",
                      "notebooks/30_ensemble.py", smoke=True),
    "export": Stage("dfdc.stages.export",
                    "the fitted ensemble as ONNX, checked against torch on real crops"),
    "package": Stage("dfdc.stages.package", "build the offline Kaggle kernel and its datasets",
                     "notebooks/40_package_kernel.py", smoke=True, ships=True),
    "evaluate": Stage("dfdc.stages.evaluate", "score evaluate.sets with the fitted ensemble",
                      "notebooks/50_evaluate.py"),
    "robustness": Stage("dfdc.stages.robustness",
                        "held-out videos under the black-box distortions",
                        "notebooks/60_robustness.py"),
}  # fmt: skip


def stage_module(name: str) -> ModuleType:
    """The module of stage ``name`` (imported now)."""
    return importlib.import_module(STAGES[name].module)
