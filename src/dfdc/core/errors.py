"""The one base class of failures a user can cause and fix.

Each module raises its own subclass (``ConfigError``, ``VideoError``, ``FoldError`` ...); the
CLI catches :class:`UserError` (and ``FileNotFoundError``) and prints its one-line message
instead of a traceback. Defined here, in the shared layer, so the CLI needs no stage's module
to know what to catch, and a stage's code dependencies stay its own.
"""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """A problem in the user's inputs; the message is one line that says how to fix it."""
