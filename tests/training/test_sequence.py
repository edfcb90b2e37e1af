"""The temporal model: padding, temporal augmentation, the embedding cache, training wiring."""

import numpy as np
import pandas as pd
import pytest
import torch

from dfdc.core.config import ModelConfig, SequenceConfig
from dfdc.kinds.embeddings import fold_embeddings
from dfdc.kinds.sequence_head import SequenceHead
from dfdc.kinds.tracks import augment_track, collate_tracks, track_items
from tests.conftest import tiny_params, tiny_sequence_run


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_a_padded_step_does_not_change_the_output(rnn, bidirectional):
    torch.manual_seed(0)
    cfg = SequenceConfig(rnn=rnn, bidirectional=bidirectional, layers=2, hidden=8)
    head = SequenceHead(6, cfg).eval()
    tracks = [torch.randn(n, 6) for n in (5, 2, 9, 1)]
    (x, lengths), _ = collate_tracks([(t, torch.tensor(0.0)) for t in tracks])
    # Fill the padding with garbage: packing must keep it away from the recurrence and the mean.
    pad = torch.arange(x.shape[1])[None, :] >= lengths[:, None]
    x[pad] = torch.randn(int(pad.sum()), 6) * 100
    with torch.no_grad():
        batched = head(x, lengths).squeeze(1)
        alone = torch.cat([head(t[None], torch.tensor([len(t)])) for t in tracks]).squeeze(1)
        longer = head(torch.cat([x, torch.randn(4, 3, 6)], dim=1), lengths).squeeze(1)
    torch.testing.assert_close(batched, alone, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(longer, alone, rtol=1e-5, atol=1e-6)


def test_temporal_augmentation():
    x = np.arange(20, dtype=np.float32)[:, None].repeat(3, axis=1)
    rng = np.random.default_rng(0)
    cfg = SequenceConfig(min_len=4, subseq_p=1.0, rate_p=0.0, reverse_p=0.0)
    for _ in range(50):
        y = augment_track(x, cfg, rng)
        assert 4 <= len(y) <= 20 and np.all(np.diff(y[:, 0]) == 1)  # a contiguous run
    rev = augment_track(x, SequenceConfig(subseq_p=0, rate_p=0, reverse_p=1.0), rng)
    assert np.array_equal(rev[:, 0], x[::-1, 0])
    lengths = {
        len(augment_track(x, SequenceConfig(subseq_p=0, rate_p=1.0), rng)) for _ in range(50)
    }
    assert lengths == {10, 40}  # every other step dropped, or each repeated
    short = np.zeros((3, 3), np.float32)  # shorter than min_len: never shortened further
    assert len(augment_track(short, SequenceConfig(subseq_p=1.0, rate_p=0.0), rng)) == 3


def _seq_run(tmp, **model):
    """A sequence run embedding with a frozen, randomly initialised backbone."""
    return tiny_sequence_run(
        "unused",
        tmp / "emb",
        run="seq",
        sequence=SequenceConfig(embed="backbone", cache_dir=str(tmp / "emb"), hidden=16),
        embed_model=ModelConfig(**{"backbone": "resnet10t", "input_size": 64, **model}),
    )


def test_embedding_cache_is_reused_and_invalidated(tiny_stage, monkeypatch):
    import dfdc.kinds.embeddings as seqmod

    params, run = tiny_params(tiny_stage), _seq_run(tiny_stage)
    faces = pd.read_parquet(params.faces.table_path)
    first, _ = fold_embeddings(
        run, 0, faces, params.faces, params.base.models_dir, params.base.seed
    )
    assert first.shape == (len(faces), 512) and np.isfinite(first).all()
    # Kept under the embedder's name (another head with the same embedder shares it).
    files = sorted((tiny_stage / "emb" / "backbone").glob("fold0-*.npy"))
    assert len(files) == 1

    calls = []
    real = seqmod.embed_crops
    monkeypatch.setattr(seqmod, "embed_crops", lambda *a, **k: calls.append(1) or real(*a, **k))
    again, _ = fold_embeddings(
        run, 0, faces, params.faces, params.base.models_dir, params.base.seed
    )
    assert calls == [] and np.array_equal(again, first)  # from the cache

    other = _seq_run(tiny_stage, backbone="resnet14t")
    changed, _ = fold_embeddings(
        other, 0, faces, params.faces, params.base.models_dir, params.base.seed
    )
    assert calls and not np.array_equal(changed[:, :8], first[:, :8])
    assert sorted((tiny_stage / "emb" / "backbone").glob("fold0-*.npy")) != files  # replaced


def test_sequence_fold_trains_from_the_frame_run_and_predict_agrees(tiny_stage, tmp_path):
    from dfdc.inference.predict import load_bundle
    from dfdc.training.loop import fit

    frame = tiny_params(tiny_stage, run="frames", epochs=1)
    fit(frame, 0, max_batches=2)
    params = frame
    result = fit(params, 0, run=tiny_sequence_run("frames", tmp_path / "emb"))
    oof = pd.read_parquet(result.out_dir / "oof.parquet")
    assert {"track_logloss", "video_logloss"} <= set(result.best)
    # One probability per track, repeated on each of its crops.
    for probs, tracks in zip(oof["frame_probs"], oof["tracks"], strict=True):
        for t in set(tracks):
            assert len({p for p, tt in zip(probs, tracks, strict=True) if tt == t}) == 1

    # dfdc predict on a validation video gives the out-of-fold scores of that video.
    ckpt = torch.load(result.out_dir / "best.pt", weights_only=False)
    assert ckpt["kind"] == "sequence"
    assert ckpt["extra"]["embedder"]["model_config"]["backbone"] == "resnet10t"
    predictor = load_bundle("unused", "cpu", models=result.out_dir / "best.pt").predictor
    assert predictor.models[0].kind.name == "sequence"
    index = pd.read_parquet(params.data.index_path).set_index("name")
    # A real video: the faces stage crops a fake with its original's boxes (DFDC fakes are
    # pixel-aligned), which inference cannot know, so only a real is cropped identically by
    # both paths (a fake's track score differed by 8e-4 on sample seed 11).
    row = oof[oof["label"] == 0].iloc[0]
    pred = predictor.predict_video(index.loc[row["video"], "path"])
    np.testing.assert_allclose(
        pred.frame_probs["tracks/fold0"], row["frame_probs"], rtol=1e-4, atol=1e-5
    )
    assert pred.frames == list(row["frames"]) or sorted(pred.frames) == sorted(row["frames"])


def test_oof_embeddings_come_from_each_videos_own_fold(tiny_stage, tmp_path):
    """``embed: oof``: a training video is embedded by the frame model of its own fold (one
    that never trained on it), not by this fold's; the checkpoint keeps this fold's embedder,
    since every video it will score is unseen."""
    import dataclasses

    from dfdc.core.provenance import sha256_file
    from dfdc.training.loop import fit

    params = tiny_params(tiny_stage, run="frames", epochs=1)
    for k in (0, 1):
        fit(params, k, max_batches=1)
    base = tiny_sequence_run("frames", tmp_path / "emb", epochs=1)
    oof = dataclasses.replace(base, sequence=dataclasses.replace(base.sequence, embed="oof"))
    result = fit(params, 0, run=oof, max_batches=1)

    folds = pd.read_parquet(params.cv.path)
    faces = pd.read_parquet(params.faces.table_path)
    cache = tmp_path / "emb" / "frames"
    for k in (0, 1):
        own = faces[faces["video"].isin(folds.loc[folds["fold"] == k, "name"])]
        (file,) = cache.glob(f"fold{k}~own-*.npy")
        cached = np.load(file)
        assert len(cached) == len(own)
        # The same numbers the fold's own model gives those rows (the run mode's embedder).
        by_own_model, _ = fold_embeddings(
            base, k, own.reset_index(drop=True), params.faces, params.base.models_dir, 0
        )
        np.testing.assert_array_equal(cached, by_own_model)
        if k == 1:  # a training video of fold 0: fold 0's model gives other numbers
            other, _ = fold_embeddings(
                base, 0, own.reset_index(drop=True), params.faces, params.base.models_dir, 0
            )
            assert not np.array_equal(other, cached)
    ckpt = torch.load(result.out_dir / "best.pt", weights_only=False)
    frame0 = sha256_file(tiny_stage / "models" / "frames" / "fold0" / "best.pt")
    assert ckpt["extra"]["embedder"]["identity"] == f"run:{frame0}"


def test_track_items_follow_frame_order():
    faces = pd.DataFrame(
        {
            "video": ["a"] * 4 + ["b"] * 2,
            "track": [0, 0, 1, 0, 0, 0],
            "frame": [8, 0, 4, 4, 3, 1],
        }
    )
    items = track_items(faces, {"a": "FAKE", "b": "REAL"}, None)
    assert [(it.video, it.track, it.frames, it.rows) for it in items] == [
        ("a", 0, (0, 4, 8), (1, 3, 0)),
        ("a", 1, (4,), (2,)),
        ("b", 0, (1, 3), (5, 4)),
    ]
    assert [it.label for it in items] == [1.0, 1.0, 0.0]
    assert len(track_items(faces, {"a": "FAKE"}, 1)) == 1
