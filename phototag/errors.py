"""Exceptions shared by modules that raise or catch them without needing the module that defines the rest."""

from __future__ import annotations


class Refused(ValueError):
    """The file cannot be written safely; it is left as it is."""
