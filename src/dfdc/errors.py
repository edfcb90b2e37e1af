"""The failures a user can cause and fix; the CLI turns these into one line, not a traceback."""

from __future__ import annotations

from dfdc.config import ConfigError
from dfdc.folds import FoldError
from dfdc.index import MetadataError
from dfdc.kaggle_api import CredentialsError, KaggleError
from dfdc.notebooks import NotebookError
from dfdc.video import VideoError

EXPECTED: tuple[type[Exception], ...] = (
    ConfigError,
    CredentialsError,
    FileNotFoundError,
    FoldError,
    KaggleError,
    MetadataError,
    NotebookError,
    VideoError,
)
