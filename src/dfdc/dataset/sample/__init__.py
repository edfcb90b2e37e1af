"""The generated offline sample: real faces from public-domain photographs, animated and
encoded like DFDC clips, with fakes made from them by face swap and self-blending."""

from dfdc.dataset.sample.build import build_sample

__all__ = ["build_sample"]
