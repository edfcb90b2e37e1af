"""Kaggle: the official client wrapped (download, datasets, kernels, submit) and the offline
kernel built from this package."""
