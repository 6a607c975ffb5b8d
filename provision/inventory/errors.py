"""The inventory's one error type: one line naming the file (and line), host and field."""
from __future__ import annotations

from ..errors import UserError


class InventoryError(UserError):
    """A one-line description of what is wrong and where."""


class PatternWarning(UserWarning):
    """A part of a host pattern that matches no host and no group: ignored, as Ansible does."""
