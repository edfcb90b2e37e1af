"""Folds, model, augmentation, the training loop, resume and DistributedDataParallel."""

import dataclasses
import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dfdc.core.config import AugConfig, CvConfig, ModelConfig, TrainConfig
from dfdc.crops.datasets import CropItem, epoch_plan
from dfdc.crops.transforms import FacePartDropout, eval_transform, train_transform
from dfdc.dataset.folds import FoldError, check_folds, make_folds
from dfdc.kinds.backbones import build_model
from dfdc.kinds.checkpoint import read_checkpoint
from dfdc.training.loop import smoothed_bce
from tests.conftest import ROOT, interrupt_in_second_epoch, tiny_params


@pytest.mark.parametrize(
    ("backbone", "drop_path"),
    [("resnet18", 0.1), ("efficientnet_b0", 0.1), ("resnext26ts", 0.1), ("densenet121", 0.0)],
)
def test_model_forward_backward(backbone, drop_path):
    model = build_model(ModelConfig(backbone=backbone, input_size=64, drop_path_rate=drop_path))
    x = torch.randn(2, 3, 64, 64)
    out = model(x)
    assert out.shape == (2, 1)
    assert torch.isfinite(out).all()
    out.sum().backward()
    missing = [
        n
        for n, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())
    ]
    assert not missing


def test_pretrained_file_loads_offline(tmp_path):
    import timm

    donor = timm.create_model("resnet18", num_classes=1000)
    path = tmp_path / "resnet18_imagenet.pth"
    torch.save(donor.state_dict(), path)
    model = build_model(ModelConfig(backbone="resnet18", pretrained_file=str(path)))
    assert torch.equal(model.conv1.weight, donor.conv1.weight)
    assert torch.equal(model.layer4[1].conv2.weight, donor.layer4[1].conv2.weight)
    assert model.fc.out_features == 1  # the 1000-class head was not loaded
    scratch = build_model(ModelConfig(backbone="resnet18"))
    assert not torch.equal(scratch.conv1.weight, donor.conv1.weight)


def test_missing_pretrained_file_and_unknown_backbone_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="pretrained_file does not exist"):
        build_model(ModelConfig(pretrained_file=str(tmp_path / "nope.pth")))
    with pytest.raises(ValueError, match="timm has no model 'resnet9000'"):
        build_model(ModelConfig(backbone="resnet9000"))
    with pytest.raises(ValueError, match="densenet121 has no drop path"):
        build_model(ModelConfig(backbone="densenet121", drop_path_rate=0.1))


def _index(parts: dict[str, list[tuple[str, str, str | None]]]) -> pd.DataFrame:
    rows = [
        {"name": n, "label": label, "original": o, "part": p}
        for p, vids in parts.items()
        for n, label, o in vids
    ]
    return pd.DataFrame(rows)


def test_folds_by_part_keep_originals_with_their_fakes():
    parts = {
        f"p{k}": [(f"r{k}", "REAL", None), (f"f{k}a", "FAKE", f"r{k}"), (f"f{k}b", "FAKE", f"r{k}")]
        for k in range(6)
    }
    # A fake filed in another part than its original: the two parts must share a fold.
    parts["p5"].append(("stray", "FAKE", "r0"))
    folds = make_folds(_index(parts), CvConfig(n_folds=3))
    assert (folds["group_kind"] == "part").all()
    fold_of = dict(zip(folds["name"], folds["fold"], strict=True))
    assert fold_of["stray"] == fold_of["r0"]
    assert folds.groupby("part")["fold"].nunique().max() == 1
    assert sorted(folds["fold"].unique()) == [0, 1, 2]


def test_folds_by_original_when_parts_are_few():
    parts = {
        "only": [(f"r{k}", "REAL", None) for k in range(4)]
        + [(f"f{k}", "FAKE", f"r{k % 4}") for k in range(8)]
    }
    folds = make_folds(_index(parts), CvConfig(n_folds=4))
    assert (folds["group_kind"] == "original").all()
    for k in range(4):
        assert folds[folds["name"].isin([f"r{k}", f"f{k}", f"f{k + 4}"])]["fold"].nunique() == 1
    with pytest.raises(FoldError, match="cannot fill 5 folds"):
        make_folds(_index(parts), CvConfig(n_folds=5))


def test_check_folds_fails_loudly():
    bad = pd.DataFrame(
        {"name": ["a", "b"], "fold": [0, 1], "group": ["g", "g"], "original": [None, "a"]}
    )
    with pytest.raises(FoldError, match="crosses folds"):
        check_folds(bad)
    bad["group"] = ["g1", "g2"]
    with pytest.raises(FoldError, match="its original 'a'"):
        check_folds(bad)


def test_augmentation_keeps_shape_and_dtype():
    every = AugConfig(
        jpeg_p=1, noise_p=1, blur_p=1, flip_p=1, downscale_p=1, color_p=1, gray_p=1, affine_p=1
    )
    image = np.random.default_rng(0).integers(0, 255, (224, 224, 3), dtype=np.uint8)
    for t in (train_transform(every, 96), eval_transform(96)):
        x = t(image=image)["image"]
        assert x.shape == (3, 96, 96) and x.dtype == torch.float32 and torch.isfinite(x).all()


def test_face_part_dropout_blanks_a_landmark_region():
    image = np.full((100, 100, 3), 200, np.uint8)
    lm = np.array([[35, 40], [65, 40], [50, 55], [38, 72], [62, 72]], np.float32)
    out = FacePartDropout(1.0)(image, lm, np.random.default_rng(1))
    blank = out.sum(axis=2) == 0
    assert 30 < blank.sum() < 2500
    ys, xs = np.nonzero(blank)
    assert any(np.hypot(xs.mean() - x, ys.mean() - y) < 20 for x, y in lm)
    assert FacePartDropout(0.0)(image, lm, np.random.default_rng(1)) is image


def _items(n_real=3, n_fake=9, crops=5):
    items = []
    for v in range(n_real + n_fake):
        for c in range(crops):
            items.append(CropItem(f"v{v}", "f", c, c, 0, float(v >= n_real), (0.0,) * 10))
    return items


def test_epoch_plan_balances_and_shards():
    cfg = TrainConfig(frames_per_video=2, balance="sample")
    plan = epoch_plan(_items(), cfg, epoch=0, seed=1)
    labels = pd.Series([it.label for it in plan]).value_counts()
    assert labels[0.0] == labels[1.0] == 6
    assert plan != epoch_plan(_items(), cfg, epoch=1, seed=1)  # fresh fakes each epoch
    shards = [epoch_plan(_items(), cfg, 0, 1, rank=r, world=2) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 6
    assert not {(i.video, i.crop_index) for i in shards[0]} & {
        (i.video, i.crop_index) for i in shards[1]
    }
    everything = epoch_plan(_items(), dataclasses.replace(cfg, balance="none"), 0, 1)
    assert len({it.video for it in everything}) == 12


def test_label_smoothing_and_half_balancing():
    logits = torch.tensor([2.0, -1.0, 0.5, 0.0])
    y = torch.tensor([1.0, 0.0, 1.0, 1.0])
    plain = smoothed_bce(logits, y, 0.0, False)
    assert plain == pytest.approx(
        torch.nn.functional.binary_cross_entropy_with_logits(logits, y).item()
    )
    smooth = smoothed_bce(logits, y, 0.1, False)
    target = torch.tensor([0.95, 0.05, 0.95, 0.95])
    assert smooth == pytest.approx(
        torch.nn.functional.binary_cross_entropy_with_logits(logits, target).item()
    )
    halves = smoothed_bce(logits, y, 0.0, True)
    per = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
    assert halves == pytest.approx((0.5 * per[y == 1].mean() + 0.5 * per[y == 0].mean()).item())


# --- the loop on real crops -----------------------------------------------------------------


def test_interrupted_run_resumes_from_its_checkpoint(tiny_stage, monkeypatch):
    import dfdc.training.loop as engine
    from dfdc.core.layout import fold_dir, live_dir

    params = tiny_params(tiny_stage, run="resume")
    calls = interrupt_in_second_epoch(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        engine.fit(params, 0, max_batches=2)
    out = fold_dir(params.base.models_dir, params.train.run, 0)
    assert (out / "last.pt").exists() and torch.load(out / "last.pt", weights_only=False)[
        "epoch"
    ] == 0

    calls["n"] = 10  # the rerun must not die, and must start at epoch 1
    result = engine.fit(params, 0, max_batches=2)
    assert calls["n"] == 11
    assert [h["epoch"] for h in result.history] == [0, 1]
    assert (
        (out / "best.pt").exists()
        and (out / "oof.parquet").exists()
        and (out / "config.json").exists()
    )
    curves = live_dir(params.base.models_dir, params.train.run, 0)
    assert (curves / "metrics.json").exists()
    assert (
        len((curves / "plots" / "metrics" / "val" / "video_logloss.tsv").read_text().splitlines())
        == 3
    )

    # A finished run called again under the same key (DVC reran the stage for its drawing code,
    # say) is kept: no epoch trains, and the curves DVC deleted are written again.
    shutil.rmtree(curves)
    calls["n"] = 10
    again = engine.fit(params, 0, max_batches=2)
    assert calls["n"] == 10 and [h["epoch"] for h in again.history] == [0, 1]
    assert again.best == result.best and again.train_images == 0
    assert (
        len((curves / "plots" / "metrics" / "val" / "video_logloss.tsv").read_text().splitlines())
        == 3
    )

    # An interrupted run made with other params starts over instead of resuming.
    calls["n"] = 0  # epoch 0 runs, epoch 1 dies: last.pt holds epoch 0 of `changed`
    changed = tiny_params(tiny_stage, run="resume", lr=0.0005)
    with pytest.raises(KeyboardInterrupt):
        engine.fit(changed, 0, max_batches=2)
    calls["n"] = 10
    other = tiny_params(tiny_stage, run="resume", lr=0.0002)
    assert [h["epoch"] for h in engine.fit(other, 0, max_batches=2).history] == [0, 1]
    assert calls["n"] == 12


def _files(out: Path) -> dict[str, tuple[bytes, int]]:
    return {n: ((out / n).read_bytes(), (out / n).stat().st_mtime_ns) for n in CKPTS}


CKPTS = ("best.pt", "last.pt", "oof.parquet")


def test_a_drawing_edit_keeps_a_finished_fold_and_a_compute_edit_retrains(
    tiny_stage, monkeypatch, tmp_path
):
    """DVC reruns a fold's stage when anything in its code changes, drawing included; the
    fold's resume key holds only the code that trains (the loop and the kind), so a plotting
    edit keeps the checkpoints (same bytes, same mtime, no epoch) and a loop edit retrains."""
    import dfdc.training.loop as engine
    from dfdc.core.fingerprint import Sources, StageCode, fingerprint_text

    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "dfdc", src / "dfdc")
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    monkeypatch.setattr(
        engine, "code_digest", lambda *roots, kinds=None: Sources(src).code_digest(roots, kinds)
    )
    real, calls = engine.train_one_epoch, {"n": 0}

    def counted(*a, **k):
        calls["n"] += 1
        return real(*a, **k)

    monkeypatch.setattr(engine, "train_one_epoch", counted)
    params = tiny_params(tiny_stage, run="keep", epochs=1)
    first = engine.fit(params, 0, max_batches=1)
    assert calls["n"] == 1
    kept = _files(first.out_dir)

    stage = StageCode("dfdc.stages.train", "notebooks/20_train_fold.py")
    before = fingerprint_text(Sources(src, tmp_path), "train", stage)
    for drawing in ("reports/plots.py", "faces/plots.py"):  # what the train notebook draws with
        f = src / "dfdc" / drawing
        f.write_text(f.read_text() + "\n_x = 1\n")
    # DVC would rerun train@0 (its code changed) ...
    assert fingerprint_text(Sources(src, tmp_path), "train", stage) != before
    again = engine.fit(params, 0, max_batches=1)
    # ... and the fold is kept: no epoch, the same files untouched.
    assert calls["n"] == 1 and _files(first.out_dir) == kept
    assert again.best == first.best and again.history == first.history

    loop = src / "dfdc" / "training" / "loop.py"
    loop.write_text(loop.read_text() + "\n_x = 1\n")
    engine.fit(params, 0, max_batches=1)
    assert calls["n"] == 2
    assert _files(first.out_dir)["last.pt"][1] != kept["last.pt"][1]


def test_oof_predictions_cover_the_fold(tiny_stage):
    from dfdc.training.loop import fit

    params = tiny_params(tiny_stage, run="oof", epochs=1)
    result = fit(params, 1, max_batches=1)
    oof = pd.read_parquet(result.out_dir / "oof.parquet")
    folds = pd.read_parquet(tiny_stage / "folds.parquet")
    assert set(oof["video"]) == set(folds.loc[folds["fold"] == 1, "name"])
    assert oof["video_prob"].between(0, 1).all() and (oof["fold"] == 1).all()
    assert all(len(p) == len(f) > 0 for p, f in zip(oof["frame_probs"], oof["frames"], strict=True))
    best = torch.load(result.out_dir / "best.pt", weights_only=False)
    assert best["config"]["run"]["model"]["backbone"] == "resnet10t" and best["kind"] == "frame"


def test_keep_last_keeps_the_final_epoch_whatever_its_score(tiny_stage):
    """keep: last makes no choice on the validation videos (an unbiased out-of-fold score)."""
    from dfdc.training.loop import fit

    params = tiny_params(tiny_stage, run="keep_last", epochs=3, keep="last", val_every=2)
    result = fit(params, 0, max_batches=1)
    assert result.best_epoch == 2
    assert result.best == {k: v for k, v in result.history[-1].items() if k != "epoch"}
    # val_every 2: epoch 1 and the last were validated, epoch 0 was not.
    assert ["video_logloss" in h for h in result.history] == [False, True, True]
    metrics = json.loads((result.out_dir / "metrics.json").read_text())
    assert metrics["best_epoch"] == 2
    assert read_checkpoint(result.out_dir / "best.pt").run.keep == "last"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, tmp: str) -> None:
    from pathlib import Path

    from dfdc.training.loop import fit

    os.environ.update(
        {
            "RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
    )
    torch.set_num_threads(1)
    params = tiny_params(Path(tmp), run="ddp", epochs=1)
    result = fit(params, 0, max_batches=3)
    torch.save(
        {n: p.detach().clone() for n, p in result.model.named_parameters()},
        Path(tmp) / f"rank{rank}.pt",
    )
    torch.distributed.destroy_process_group()


def test_ddp_two_cpu_processes_end_with_identical_weights(tiny_stage):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tiny_stage)), nprocs=2, join=True)
    a = torch.load(tiny_stage / "rank0.pt")
    b = torch.load(tiny_stage / "rank1.pt")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # And training moved them away from the initial weights (fit seeds with base.seed + fold).
    from dfdc.training.loop import _seed_everything

    _seed_everything(42)
    fresh = build_model(ModelConfig(backbone="resnet10t", input_size=64))
    assert not torch.equal(a["conv1.0.weight"], fresh.conv1[0].weight)
