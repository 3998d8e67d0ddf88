"""File names as text: the displayed form of a name's bytes, and control characters made visible.

A name is bytes; its displayed form decodes them as UTF-8, bytes that are not UTF-8 as ``\\xNN``
(``caf\\xe9.jpg``). That form is what the index's ``path`` column, JSON and CSV hold (exact for every
valid name). For people (terminal tables, summaries, messages) and XML, where a control character
would act (``\\x1b[2J`` clears a terminal) or is not allowed, ``escape_controls`` shows those as
``\\xNN`` / ``\\uNNNN`` too, and the bidirectional overrides that reorder what a line shows.
"""

from __future__ import annotations

import os
import re

# C0 and C1 controls, DEL, the bidirectional embeddings, overrides and isolates, and the two
# non-characters XML refuses.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufffe\uffff]")


def display_path(path: str | os.PathLike | bytes) -> str:
    """A name's displayed form: UTF-8, with bytes that are not UTF-8 as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


def escape_controls(text: str) -> str:
    """``text`` with its control characters written as ``\\xNN`` or ``\\uNNNN``, so printing it does
    nothing to a terminal and it is valid in XML."""
    return _CONTROLS.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


def printable(path: str | os.PathLike | bytes) -> str:
    """A name for people and XML: its displayed form with control characters escaped."""
    return escape_controls(display_path(path))
