"""The Kaggle competition this workspace is built for, stated once: its id, and the code
kernel's limits (4,000 test videos in 9 hours) that the package stage and the benchmarks
project against."""

from __future__ import annotations

__all__ = ["COMPETITION", "KERNEL_BUDGET_S", "TEST_VIDEOS"]

COMPETITION = "deepfake-detection-challenge"
KERNEL_BUDGET_S = 9 * 3600
TEST_VIDEOS = 4000
