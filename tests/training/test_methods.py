"""Training methods beyond crops alone: real/fake pairs of the same frame, self-blended
pseudo-fakes (SBI) and noise-residual (SRM) input, each training a fold that predict loads."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from dfdc.core.config import AugConfig, ConfigError, SelfBlendConfig, TrainConfig, params_from_dict
from dfdc.crops.datasets import (
    CropDataset,
    CropItem,
    collate_groups,
    crop_items,
    epoch_plan,
    fake_originals,
    sbi_skipped,
)
from dfdc.crops.sbi import self_blend, selfblend_mask
from dfdc.crops.transforms import train_transform
from dfdc.kinds.checkpoint import read_checkpoint
from dfdc.training.loop import fit
from tests.conftest import tiny_params

LANDMARKS = np.array([[40, 50], [88, 50], [64, 70], [46, 92], [82, 92]], np.float32)
LM_FRACTIONS = tuple(float(v) for v in (LANDMARKS / 128).ravel())


def _face(seed: int = 0) -> np.ndarray:
    """A textured 128 px crop: noise, so that any change of pixels shows."""
    return np.random.default_rng(seed).integers(0, 256, (128, 128, 3), dtype=np.uint8)


def test_self_blend_changes_only_inside_the_mask():
    image = _face()
    cfg = SelfBlendConfig(p=1.0)
    mask = selfblend_mask(LANDMARKS, image.shape[:2], cfg, np.random.default_rng(3))
    out = self_blend(image, LANDMARKS, cfg, np.random.default_rng(3))
    changed = np.any(out != image, axis=2)
    assert changed.sum() > 500  # the face changed
    assert not changed[mask <= 0].any()  # outside the mask's support: the real crop, exactly
    # The inner face is inside the mask; the corners are not.
    assert mask[70, 64] > 0.3
    assert mask[:10, :10].max() == 0 and mask[-10:, -10:].max() == 0
    assert out.dtype == np.uint8 and out.shape == image.shape


def test_self_blend_is_deterministic_per_seed():
    image, cfg = _face(1), SelfBlendConfig(p=1.0)
    a = self_blend(image, LANDMARKS, cfg, np.random.default_rng(5))
    b = self_blend(image, LANDMARKS, cfg, np.random.default_rng(5))
    c = self_blend(image, LANDMARKS, cfg, np.random.default_rng(6))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"p": 1.5}, "train.sbi.p"),
        ({"scale": -0.1}, "train.sbi.scale"),
        ({"resample_range": [0.9, 0.4]}, "train.sbi.resample_range"),
        ({"blend_ratios": [0.0]}, "train.sbi.blend_ratios"),
        ({"only": True}, "train.sbi.only"),
    ],
)
def test_selfblend_params_out_of_range_name_the_key(raw, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        params_from_dict({"train": {"sbi": raw}})


def test_pairs_apply_to_frame_runs_only():
    with pytest.raises(ConfigError, match=r"sequence\.balance"):
        params_from_dict({"sequence": {"balance": "pairs"}})


def _items() -> tuple[list[CropItem], dict[str, str]]:
    """Two reals with 4 frames; each has a fake of 3 of those frames; one fake has no original."""
    items = []
    for v, label, frames in [
        ("r0", 0.0, range(4)),
        ("r1", 0.0, range(4)),
        ("f0", 1.0, range(1, 4)),
        ("f1", 1.0, range(3)),
        ("orphan", 1.0, range(4)),
    ]:
        items += [CropItem(v, v, f, f * 10, 0, label, LM_FRACTIONS) for f in frames]
    return items, {"f0": "r0", "f1": "r1", "orphan": "missing"}


def test_crops_without_usable_landmarks_get_no_self_blend():
    items, originals = _items()
    blind = dataclasses.replace(items[0], landmarks=(float("nan"),) * 10)
    flat = dataclasses.replace(items[1], landmarks=(0.5,) * 10)  # every point in one place
    items = [blind, flat, *items[2:]]
    assert sbi_skipped(items) == 2
    cfg = TrainConfig(balance="sample", frames_per_video=4, sbi=SelfBlendConfig(p=1.0))
    for epoch in range(3):
        plan = epoch_plan(items, cfg, epoch=epoch, seed=1, originals=originals)
        blended = {(it.video, it.crop_index) for it in plan if it.blend}
        assert blended and not blended & {("r0", 0), ("r0", 1)}


def test_pair_plan_puts_each_fake_beside_its_original_frame():
    items, originals = _items()
    cfg = TrainConfig(balance="pairs", frames_per_video=2)
    plan = epoch_plan(items, cfg, epoch=0, seed=1, originals=originals)
    reals, fakes = plan[0::2], plan[1::2]
    assert len(plan) == 8  # 2 frames of each of the 2 fakes with an original; no orphan
    for real, fake in zip(reals, fakes, strict=True):
        assert (real.label, fake.label) == (0.0, 1.0)
        assert real.video == originals[fake.video] and real.frame == fake.frame
    # DistributedDataParallel: ranks split whole pairs.
    shards = [epoch_plan(items, cfg, 0, 1, rank=r, world=2, originals=originals) for r in (0, 1)]
    assert [len(s) for s in shards] == [4, 4]
    assert all(s[0].video in ("r0", "r1") and s[1].label == 1.0 for s in shards)


def test_selfblend_plans_add_or_replace_fakes():
    items, originals = _items()
    # sample balance: pseudo-fakes are draws of their own, beside the real fakes.
    cfg = TrainConfig(balance="sample", frames_per_video=4, sbi=SelfBlendConfig(p=1.0))
    plan = epoch_plan(items, cfg, epoch=0, seed=1, originals=originals)
    blends = [it for it in plan if it.blend]
    assert len(blends) == 8 and all(it.label == 1.0 and it.video in ("r0", "r1") for it in blends)
    assert any(it.label == 1.0 and not it.blend for it in plan)
    # only: reals and their self-blends alone, in pairs.
    only = dataclasses.replace(cfg, sbi=SelfBlendConfig(p=1.0, only=True))
    plan = epoch_plan(items, only, epoch=0, seed=1, originals=originals)
    assert len(plan) == 16
    for real, fake in zip(plan[0::2], plan[1::2], strict=True):
        assert not real.blend and real.label == 0.0
        assert fake.blend and (fake.video, fake.crop_index) == (real.video, real.crop_index)


def test_pair_dataset_augments_both_crops_alike(tiny_stage):
    """A real crop paired with itself comes out identical: flips, crops, colour, JPEG and
    part dropout were drawn once for the pair."""
    faces = pd.read_parquet(tiny_stage / "faces.parquet")
    folds = pd.read_parquet(tiny_stage / "folds.parquet")
    labels = dict(zip(folds["name"], folds["label"], strict=True))
    items = crop_items(faces, labels, 1)
    real = next(it for it in items if it.label == 0.0)
    aug = AugConfig(jpeg_p=1, noise_p=1, flip_p=0.5, color_p=1, affine_p=1, part_dropout_p=1)
    ds = CropDataset(
        [real, real] * 4,
        train_transform(aug, 64, seed=0, pairs=True),
        aug.part_dropout_p,
        seed=0,
        group=2,
    )
    x, y = collate_groups([ds[i] for i in range(len(ds))])
    assert x.shape == (8, 3, 64, 64) and y.tolist() == [0.0] * 8
    assert torch.allclose(x[0::2], x[1::2])
    assert not torch.allclose(x[0], x[2])  # draws differ between pairs
    # Its self-blend differs, but only inside the face.
    ds = CropDataset(
        [real, dataclasses.replace(real, label=1.0, blend=True)],
        train_transform(AugConfig(jpeg_p=0, noise_p=0, color_p=0, affine_p=0, gray_p=0,
                                  blur_p=0, downscale_p=0), 64, seed=0, pairs=True),
        seed=0,
        group=2,
        sbi=SelfBlendConfig(p=1.0),
    )  # fmt: skip
    (x, y) = ds[0]
    assert y.tolist() == [0.0, 1.0] and not torch.allclose(x[0], x[1])
    diff = (x[0] - x[1]).abs().sum(0)
    assert diff[:4, :4].max() == 0 and diff[-4:, -4:].max() == 0


@pytest.mark.parametrize(
    "train",
    [
        {"balance": "pairs"},
        {"balance": "sample", "sbi": {"p": 0.5}},
        {"balance": "pairs", "sbi": {"p": 1.0, "only": True}},
        {"balance": "sample", "model": {"backbone": "resnet10t", "input_size": 64, "srm": True}},
        {"balance": "pairs", "masks": {"weight": 1.0, "guide_dropout": True}, "sbi": {"p": 0.5},
         "aug": {"part_dropout_p": 0.5}},
        {"balance": "sample", "model": {"backbone": "resnet10t", "input_size": 64,
                                        "wsdan_maps": 4}},
    ],
    ids=["pairs", "sbi", "sbi-only", "srm", "masks", "wsdan"],
)  # fmt: skip
def test_each_method_trains_a_fold_that_predict_loads(tiny_stage, train, request):
    params = tiny_params(tiny_stage, run=f"m_{request.node.callspec.id}", epochs=1, **train)
    if params.train.masks.used and not (tiny_stage / "masks.parquet").exists():
        from dfdc.stages.masks import run as masks_stage

        masks_stage(params)
    result = fit(params, fold=0, max_batches=2)
    assert np.isfinite(result.history[0]["train_loss"])
    from dfdc.inference.predict import load_bundle

    ckpt = read_checkpoint(result.out_dir / "best.pt")
    assert ckpt.run.balance == train["balance"] and ckpt.run.sbi == params.train.sbi
    bundle = load_bundle(tiny_stage / "models", "cpu", models=result.out_dir / "best.pt")
    video = pd.read_parquet(tiny_stage / "videos.parquet")["path"].iloc[0]
    pred = bundle.score(video)
    assert pred.status == "ok" and 0 < pred.prob < 1


def test_fake_originals_come_from_the_folds_table():
    folds = pd.DataFrame(
        {"name": ["a", "b", "c"], "original": [None, "a", "a"], "label": ["REAL", "FAKE", "FAKE"]}
    )
    assert fake_originals(folds, {"a": "REAL", "b": "FAKE"}) == {"b": "a"}
