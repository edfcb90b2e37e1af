"""The export stage: the fitted ensemble as ONNX (:mod:`dfdc.inference.export`) into
``inference.export_dir``, checked against the checkpoints it came from on real crops of the
faces stage: the largest probability difference per member goes into ``export.json``, and one
above :data:`TOLERANCE` fails the stage rather than shipping a model that scores differently."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dfdc.core.config import Params
from dfdc.core.errors import UserError
from dfdc.core.io import write_json
from dfdc.faces.store import load_video_faces
from dfdc.inference.ensemble import Ensemble
from dfdc.inference.export import ExportResult, export_fitted
from dfdc.inference.onnx_engine import MANIFEST, OnnxEngine
from dfdc.inference.torch_engine import TorchEngine

__all__ = ["TOLERANCE", "ExportResult", "run"]

TOLERANCE = 1e-4  # in probability, on every checked crop
CHECK_VIDEOS = 2


def run(params: Params) -> ExportResult:
    ens = Ensemble.load(params.ensemble.ensemble_path)
    out = Path(params.inference.export_dir)
    torch_engine, result = export_fitted(params.base.models_dir, ens, out)
    result.manifest["parity"] = check_parity(torch_engine, out, params.faces.table_path)
    write_json(result.manifest, out / MANIFEST)
    worst = max(result.manifest["parity"]["max_abs_diff"].values(), default=0.0)
    if worst > TOLERANCE:
        raise UserError(
            f"{out}: ONNX scores differ from torch by {worst:.2e} (> {TOLERANCE:g}) on real crops"
        )
    return result


def check_parity(engine: TorchEngine, export_dir: Path, faces_table: str | Path) -> dict:
    """Torch against ONNX Runtime on the crops of the first videos of the faces table."""
    onnx = OnnxEngine(export_dir, [m.name for m in engine.models], device="cpu")
    table = pd.read_parquet(faces_table, columns=["video", "file"]).drop_duplicates("video")
    diffs: dict[str, float] = {m.name: 0.0 for m in engine.models}
    crops = 0
    for file in table["file"].head(CHECK_VIDEOS):
        vf = load_video_faces(file)
        ref = engine.crop_probs(vf.crops, vf.track, vf.frame)
        got = onnx.crop_probs(vf.crops, vf.track, vf.frame)
        for k in diffs:
            if len(ref[k]):
                diffs[k] = max(diffs[k], float(np.max(np.abs(ref[k] - got[k]))))
        crops += len(vf.crops)
    return {"videos": int(min(CHECK_VIDEOS, len(table))), "crops": crops, "max_abs_diff": diffs}
