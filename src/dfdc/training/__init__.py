"""The train stages: the one loop, crop datasets and augmentation."""
