"""Echoing what a user gave back to them, without echoing five megabytes of it.

Every error message and log line that quotes an input goes through ``clip``: a 5 MB
region or a 1 MB event key becomes a short, readable line (CloudWatch Logs takes 256 KB
an event; a terminal takes less).
"""

from __future__ import annotations

ECHO_LIMIT = 200  # characters of any one input a message quotes


def clip(value: object, limit: int = ECHO_LIMIT, *, quote: bool = True) -> str:
    """``repr(value)`` (or ``str`` with ``quote=False``) cut to ``limit`` characters, saying how long it was."""
    text = repr(value) if quote else str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"
