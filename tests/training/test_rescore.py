"""A finished fold scored again (``rescore_fold``): the same out-of-fold table as training
wrote, and a wrapper (a test-time augmentation, ``benchmarks/tta.py``) really in the path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from dfdc.core.layout import fold_dir
from dfdc.training.loop import rescore_fold


class Silenced(torch.nn.Module):
    """Every logit 0: a wrapper whose effect cannot be missed (every probability 0.5)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) * 0


def test_rescoring_a_fold_gives_its_out_of_fold_table(kernel_package, tmp_path):
    params, _, _ = kernel_package
    kept = pd.read_parquet(fold_dir(params.base.models_dir, "kernel", 0) / "oof.parquet")
    run = params.train
    metrics = rescore_fold(params, 0, run, tmp_path / "plain")
    again = pd.read_parquet(tmp_path / "plain" / "oof.parquet")
    assert list(again["video"]) == list(kept["video"])
    np.testing.assert_allclose(again["video_prob"], kept["video_prob"], atol=1e-5)
    assert set(metrics) >= {"video_auc", "video_logloss"}
    rescore_fold(params, 0, run, tmp_path / "silenced", wrap=Silenced)
    silenced = pd.read_parquet(tmp_path / "silenced" / "oof.parquet")
    assert np.allclose(np.concatenate(silenced["frame_probs"].to_list()), 0.5)
