"""Fault matrix, training (docs/faults.md): a half-written or empty ``last.pt`` (a run killed
while the disk was full) is named in one warning and the fold trains again from the start,
to the same result as a clean run; the checkpoints it writes load as data."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from dfdc.core.layout import fold_dir
from dfdc.core.torch_files import load_torch_file
from dfdc.kinds.checkpoint import read_checkpoint, read_resume
from tests.conftest import interrupt_in_second_epoch, tiny_params


def test_a_corrupt_last_pt_is_named_and_the_fold_trains_again(tiny_stage, tmp_path, monkeypatch,
                                                              caplog):  # fmt: skip
    import dfdc.training.loop as engine

    params = tiny_params(tiny_stage, run="faults_last")
    clean = engine.fit(params, 0, max_batches=1, out_dir=tmp_path / "clean",
                       curves_dir=tmp_path / "clean_live")  # fmt: skip

    calls = interrupt_in_second_epoch(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        engine.fit(params, 0, max_batches=1)
    last = fold_dir(params.base.models_dir, params.train.run, 0) / "last.pt"
    assert load_torch_file(last)["epoch"] == 0  # an unfinished run, resumable

    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2])
    calls["n"] = 10  # no more interruptions; count the epochs trained
    with caplog.at_level(logging.WARNING):
        result = engine.fit(params, 0, max_batches=1)
    assert "starting over" in _named(caplog, last)
    assert calls["n"] == 12  # both epochs, from the start
    assert [h["epoch"] for h in result.history] == [0, 1]
    assert result.best == pytest.approx(clean.best, rel=1e-5)  # as a clean run trains it
    assert load_torch_file(last)["epoch"] == 1  # made again, readable
    ckpt = read_checkpoint(result.out_dir / "best.pt")  # and the kept model loads as data
    assert ckpt.kind == "frame" and ckpt.metrics == pytest.approx(clean.best, rel=1e-5)

    # An empty one: no resume either (the same path fit takes, without training again).
    last.write_bytes(b"")
    caplog.clear()
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.AdamW(model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    with caplog.at_level(logging.WARNING):
        resume = read_resume(last, "key", 2, 0, model, opt, sched, torch.amp.GradScaler("cpu"),
                             "cpu")  # fmt: skip
    assert resume is None and "starting over" in _named(caplog, last)


def _named(caplog: pytest.LogCaptureFixture, path) -> str:
    """The one warning that names ``path``."""
    lines = [r.getMessage() for r in caplog.records
             if r.levelno == logging.WARNING and str(path) in r.getMessage()]  # fmt: skip
    assert len(lines) == 1 and "\n" not in lines[0], caplog.text
    return lines[0]


def test_a_corrupt_embedding_cache_is_named_and_made_again(tiny_stage, tmp_path, caplog):
    import pandas as pd

    from dfdc.core.config import ModelConfig, SequenceConfig
    from dfdc.kinds.embeddings import fold_embeddings
    from tests.conftest import tiny_sequence_run

    params = tiny_params(tiny_stage)
    run = tiny_sequence_run(
        "unused", tmp_path, run="seq_faults",
        sequence=SequenceConfig(embed="backbone", cache_dir=str(tmp_path), hidden=16),
        embed_model=ModelConfig(backbone="resnet10t", input_size=64),
    )  # fmt: skip
    faces = pd.read_parquet(params.faces.table_path).head(24)
    args = (run, 0, faces, params.faces, params.base.models_dir, params.base.seed)
    clean, _ = fold_embeddings(*args)
    (cache,) = (tmp_path / "backbone").glob("fold0-*.npy")
    cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])
    with caplog.at_level(logging.WARNING):
        again, _ = fold_embeddings(*args)
    _named(caplog, cache)
    assert np.array_equal(again, clean)
    assert np.array_equal(np.load(cache), clean)  # made again, readable
