"""The base of every error a user can fix: its message is one line that says what to do.

The Invoke tasks print such errors as that one line and exit non-zero, never as a traceback.
"""
from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; `str(error)` is one line naming the file, host or field."""
