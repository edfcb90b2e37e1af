"""The CUDA path end to end on the tiny sample: a fold trained with AMP and channels-last on
the GPU, then scored through the one inference path with weights and inputs on the GPU.
Skipped (with the reason) where there is no CUDA device."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tests.conftest import tiny_params

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]


def test_train_and_predict_on_cuda(tiny_stage, tiny_raw):
    from dfdc.inference.predict import load_bundle
    from dfdc.training.loop import fit

    params = tiny_params(tiny_stage, run="gpu", epochs=1)
    params = dataclasses.replace(params, base=dataclasses.replace(params.base, device="cuda"))
    result = fit(params, 0, max_batches=2)
    assert next(result.model.parameters()).device.type == "cuda"
    assert np.isfinite(result.best["video_logloss"])
    bundle = load_bundle(params.base.models_dir, "cuda", models=result.out_dir)
    assert bundle.predictor.device == "cuda"
    video = sorted((tiny_raw / "test_videos").glob("*.mp4"))[0]
    pred = bundle.score(video)
    assert pred.status == "ok" and 0.0 < pred.prob < 1.0
