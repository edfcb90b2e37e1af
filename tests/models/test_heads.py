"""Heads beyond the one-logit classifier: WS-DAN attention cropping and dropping, and the
segmentation head on the difference masks; the loss that reads them."""

import dataclasses

import pytest
import timm
import torch

from dfdc.core.config import ConfigError, ModelConfig, TrainConfig, params_from_dict
from dfdc.crops.losses import frame_loss, mask_loss
from dfdc.kinds.backbones import build_model
from dfdc.kinds.heads import AttentionHead, SegmentationAux, attention_crop_boxes


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return timm.create_model("resnet10t", pretrained=False, num_classes=1)


def test_attention_shapes_and_views():
    head = AttentionHead(_net(), maps=4)
    x = torch.randn(3, 3, 64, 64)
    pooled, a = head.pool(head.forward_features(x))
    assert a.shape == (3, 4, 2, 2) and pooled.shape == (3, 4 * head.num_features)
    assert torch.allclose(pooled.norm(dim=1), torch.ones(3), atol=1e-4)
    head.train()
    out = head(x)
    assert out["logits"].shape == (3, 3)  # raw, crop and drop views
    head.eval()
    with torch.no_grad():
        assert head(x).shape == (3, 1)


def test_crop_box_lies_inside_the_image_around_the_peak():
    maps = torch.zeros(2, 16, 16)
    maps[0, 4:8, 10:14] = 1.0
    maps[1] = torch.rand(16, 16)
    boxes = attention_crop_boxes(maps, torch.tensor([0.5, 0.5]))
    assert boxes[0].tolist() == [10, 4, 14, 8]
    x1, y1, x2, y2 = boxes[1].tolist()
    assert 0 <= x1 < x2 <= 16 and 0 <= y1 < y2 <= 16
    head = AttentionHead(_net(), maps=2)
    x = torch.randn(2, 3, 16, 16)
    view = head.crop_view(x, maps, torch.tensor([0.5, 0.5]))
    assert view.shape == x.shape


def test_drop_erases_only_where_the_map_is_high():
    head = AttentionHead(_net(), maps=2)
    x = torch.ones(1, 3, 32, 32)
    maps = torch.zeros(1, 32, 32)
    maps[0, 0:8, 0:8] = 1.0
    out = head.drop_view(x, maps, torch.tensor([0.5]))
    erased = (out == 0).all(1)[0]
    assert erased[1:7, 1:7].all() and not erased[12:, :].any() and not erased[:, 12:].any()


def test_gradients_reach_the_backbone_through_every_view():
    head = AttentionHead(_net(), maps=4)
    head.train()
    out = head(torch.randn(4, 3, 64, 64))
    loss = frame_loss(out, [torch.tensor([0.0, 1.0, 0.0, 1.0])], TrainConfig())
    loss.backward()
    stem = next(p for p in head.net.parameters() if p.ndim == 4)
    assert stem.grad is not None and stem.grad.abs().sum() > 0
    assert head.attention[0].weight.grad.abs().sum() > 0


def test_segmentation_head_returns_the_logit_and_a_map():
    model = SegmentationAux(_net())
    model.train()
    out = model(torch.randn(2, 3, 64, 64))
    assert out["logits"].shape == (2, 1) and out["seg"].shape == (2, 1, 2, 2)
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 1)


def test_mask_loss_counts_known_masks_only():
    seg = torch.zeros(2, 1, 2, 2)
    masks = torch.stack([torch.ones(8, 8), torch.zeros(8, 8)])
    # Logit 0 everywhere: BCE log 2 whatever the target; an unknown mask adds nothing.
    assert torch.isclose(
        mask_loss(seg, masks, torch.tensor([1.0, 0.0])), torch.log(torch.tensor(2.0))
    )
    seg = torch.full((2, 1, 2, 2), 10.0)
    assert mask_loss(seg, masks, torch.tensor([1.0, 0.0])) < 1e-3
    assert mask_loss(seg, masks, torch.tensor([0.0, 1.0])) > 9


def test_the_heads_build_from_config_and_exclude_each_other():
    model = build_model(ModelConfig(backbone="resnet10t", wsdan_maps=4))
    assert isinstance(model, AttentionHead)
    model = build_model(ModelConfig(backbone="resnet10t"), seg_head=True)
    assert isinstance(model, SegmentationAux)
    with pytest.raises(ConfigError, match="wsdan_maps"):
        params_from_dict({"train": {"model": {"wsdan_maps": 4}, "masks": {"weight": 1.0}}})
    with pytest.raises(ConfigError, match=r"train\.model\.wsdan_crop"):
        params_from_dict({"train": {"model": {"wsdan_crop": [0.7, 0.2]}}})
    assert dataclasses.replace(ModelConfig(), wsdan_maps=8).wsdan_maps == 8
