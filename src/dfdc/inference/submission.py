"""The submission: every test video scored through an inference bundle into
``filename,label``, in the competition's order; and the test videos' labels where known.

The ensemble stage and the Kaggle kernel both write their ``submission.csv`` here, so the two
cannot disagree on order, failures or clipping.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from dfdc.core.config import FacesConfig
from dfdc.core.io import write_text
from dfdc.core.progress import progress

log = logging.getLogger(__name__)

__all__ = ["make_submission", "test_order", "test_truth"]


def test_order(competition_dir: str | Path, names: list[str]) -> list[str]:
    """The order of the submission's rows: ``sample_submission.csv``'s in ``competition_dir``
    when it is there, else the test videos' names sorted."""
    order_file = Path(competition_dir) / "sample_submission.csv"
    if order_file.exists():
        return pd.read_csv(order_file)["filename"].tolist()
    return sorted(names)


def test_truth(raw_dir: str | Path, index: pd.DataFrame) -> pd.Series:
    """Test video name -> 1 (FAKE) / 0 (REAL), where known: the sample's hidden
    ``test_labels.csv``, else the index's own labels of the test split (FaceForensics++
    test.json, Celeb-DF's list)."""
    labels = Path(raw_dir) / "test_labels.csv"
    if labels.exists():
        return pd.read_csv(labels).set_index("filename")["label"].astype(int)
    test = index[(index["split"] == "test") & index["label"].notna()]
    return pd.Series((test["label"] == "FAKE").astype(int).to_numpy(), index=test["name"])


def make_submission(
    test_paths: list[Path],
    order: list[str],
    bundle,
    out_path: str | Path,
    faces: FacesConfig | None = None,
) -> pd.DataFrame:
    """``filename,label`` for every file of ``order`` scored by ``bundle`` (an
    :class:`~dfdc.inference.predict.InferenceBundle`; on Ray actors with ``faces.executor:
    ray``); a video that fails scores 0.5."""
    by_name = {p.name: p for p in test_paths}
    probs, failed = {}, [n for n in order if n not in by_name]
    present = [n for n in order if n in by_name]
    with progress(total=len(present), desc="test videos", unit="video") as bar:
        preds = bundle.score_all([by_name[n] for n in present], faces, lambda _: bar.update())
    for name, pred in zip(present, preds, strict=True):
        if pred.status != "ok":
            failed.append(name)
            continue
        probs[name] = pred.prob
    for name in failed:
        probs[name] = 0.5
    if failed:
        log.warning(
            "%d of %d test videos failed or had no face and score 0.5: %s",
            len(failed),
            len(order),
            failed[:5],
        )
    # Whatever the ensemble says, no printed answer is exactly 0 or 1 (6 decimals).
    labels = np.clip([probs[n] for n in order], 1e-6, 1 - 1e-6)
    sub = pd.DataFrame({"filename": order, "label": labels})
    write_text(sub.to_csv(index=False, float_format="%.6f"), out_path)
    return sub
