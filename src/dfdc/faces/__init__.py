"""Face extraction: sampled frames -> MTCNN -> tracks -> square crops stored one file a video."""

from dfdc.faces.extract import extract_video, run_faces
from dfdc.faces.store import load_video_faces

__all__ = ["extract_video", "load_video_faces", "run_faces"]
