"""The ``robustness`` section: the black-box distortions and their levels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dfdc.core.typed import ConfigError, ranged

__all__ = ["RobustnessConfig"]


@dataclass(frozen=True)
class RobustnessConfig:
    """The robustness report: held-out videos scored clean and under the DFDC black-box
    distortions (``dfdc.robustness``), each at the severity levels listed (empty: not run)."""

    out_dir: str = "data/interim/robustness"  # the distorted clips (a cache)
    metrics_path: str = "metrics/robustness.json"
    plots_dir: str = "metrics/robustness"
    seed: int = ranged(0, 0, 2**32 - 1)
    base_crf: int = ranged(18, 0, 51)  # H.264 CRF of every re-encode that does not set its own
    # At most this many videos of each held-out group (out-of-fold, labelled test), half real
    # and half fake, drawn with the seed (0: all). auto: 2 for the sample (make repro's
    # budget), 8 for a real data source (dfdc.stages.robustness; each video costs a re-encode
    # a distortion level).
    videos: int | Literal["auto"] = ranged("auto", 0, 10**9)
    include_test: bool = True  # the index's labelled test videos, scored by the full ensemble
    reencode: tuple[float, ...] = ranged((1.0,), 1, 1)  # the control: re-encoded, nothing else
    fps: tuple[float, ...] = ranged((15.0, 10.0), 1, 120)
    downscale: tuple[float, ...] = ranged((0.5, 0.25), 0.05, 1, hi_open=True)
    crf: tuple[float, ...] = ranged((30.0, 38.0, 45.0), 0, 51)
    overlay: tuple[float, ...] = ranged((0.1, 0.25), 0, 0.5, lo_open=True)
    flip: tuple[float, ...] = ranged((1.0,), 1, 1)
    brightness: tuple[float, ...] = ranged((0.25, 0.5), 0, 1, lo_open=True, hi_open=True)
    noise: tuple[float, ...] = ranged((5.0, 15.0), 0, 64, lo_open=True)
    blur: tuple[float, ...] = ranged((1.5, 4.0), 0, 20, lo_open=True)
    mix: tuple[float, ...] = ranged((1.0,), 1, 2)

    def levels(self) -> dict[str, tuple[float, ...]]:
        """Distortion name -> its severity levels, mildest first, in the report's order."""
        names = ("reencode", "fps", "downscale", "crf", "overlay", "flip", "brightness",
                 "noise", "blur", "mix")  # fmt: skip
        return {n: tuple(getattr(self, n)) for n in names if getattr(self, n)}

    def __post_init__(self) -> None:
        bad = [v for v in self.mix if v not in (1, 2)]  # a count of distortions mixed
        if bad:
            raise ConfigError(f"robustness.mix: level(s) {bad} must be 1 or 2")
