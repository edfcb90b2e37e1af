"""Face extraction: sampled frames -> a detector -> tracks -> square crops stored one file a
video (:mod:`~dfdc.faces.pipeline` for one video, :mod:`~dfdc.faces.batch` for the index)."""
