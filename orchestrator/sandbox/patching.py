"""Reversible patches of moto's internals, installed only while a Sandbox runs."""

from __future__ import annotations

import threading
from typing import Any


class PatchSet:
    """Replace some class attributes, remember the originals, put them back.

    Idempotent both ways, and thread-safe, so a Sandbox's start and stop (and a failed
    start) can call them without keeping their own bookkeeping.
    """

    def __init__(self, *patches: tuple[type, str, Any]) -> None:
        self._patches = patches
        self._originals: dict[tuple[type, str], Any] = {}
        self.lock = threading.Lock()

    def install(self) -> None:
        with self.lock:
            if self._originals:
                return
            for owner, name, replacement in self._patches:
                self._originals[(owner, name)] = owner.__dict__[name]
                setattr(owner, name, replacement)

    def uninstall(self) -> None:
        with self.lock:
            for (owner, name), original in self._originals.items():
                setattr(owner, name, original)
            self._originals.clear()

    def original(self, owner: type, name: str) -> Any:
        """What the patched attribute was: replacements call it for cases they leave alone."""
        return self._originals[(owner, name)]
