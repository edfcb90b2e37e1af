"""Noise-residual (SRM) input channels."""

import torch

from dfdc.core.config import ModelConfig
from dfdc.kinds.backbones import build_model, model_norm
from dfdc.kinds.residuals import NoiseResidualInput, srm_kernels


def test_srm_kernels_sum_to_zero_so_a_flat_image_has_no_residual():
    k = srm_kernels()
    assert k.shape == (3, 3, 5, 5)
    assert torch.allclose(k.sum(dim=(1, 2, 3)), torch.zeros(3), atol=1e-7)
    model = NoiseResidualInput(torch.nn.Identity())
    flat = torch.full((1, 3, 32, 32), 0.7)
    r = model.residuals(flat)
    assert r.shape == (1, 3, 32, 32)
    assert r[..., 2:-2, 2:-2].abs().max() < 1e-6  # away from the zero padding
    noisy = flat + 0.1 * torch.randn_like(flat)
    assert model.residuals(noisy)[..., 2:-2, 2:-2].abs().mean() > 1e-3


def test_srm_model_trains_and_keeps_the_pretrained_stem(tmp_path):
    plain = build_model(ModelConfig(backbone="resnet10t", input_size=64))
    torch.save(plain.state_dict(), tmp_path / "w.pth")
    cfg = ModelConfig(backbone="resnet10t", input_size=64, srm=True)
    model = build_model(ModelConfig(**{**cfg.__dict__, "pretrained_file": str(tmp_path / "w.pth")}))
    assert isinstance(model, NoiseResidualInput)
    assert model_norm(model) == model_norm(plain)
    stem = model.net.conv1[0].weight
    assert stem.shape[1] == 6
    # timm spreads the 3-channel stem over 6 channels (repeated, scaled by 3/6).
    assert torch.allclose(stem[:, :3] * 2, plain.conv1[0].weight, atol=1e-6)
    x = torch.randn(2, 3, 64, 64)
    out = model(x)
    assert out.shape == (2, 1) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    # The state dict round-trips through a model built from the same config (checkpoints).
    again = build_model(cfg)
    again.load_state_dict(model.state_dict())
    assert torch.allclose(again.eval()(x), model.eval()(x))
