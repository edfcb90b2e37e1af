"""Difference masks: where each fake crop differs from its original's crop of the same frame
(:mod:`~dfdc.masks.compute` makes them, :mod:`~dfdc.masks.store` reads them for training)."""
