"""Robustness: the DFDC black-box distortions and the report of what they cost."""
