"""The data stage: sources (generated sample, Kaggle, local folders) into the video index."""
