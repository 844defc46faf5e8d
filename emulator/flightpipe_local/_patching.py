"""Reversible attribute replacement for the emulator's patches of moto.

Every patch module replaces a few attributes of moto's classes or modules. The
stack installs them when it starts and restores the originals when it stops,
so tests that use plain moto in the same process see moto unchanged.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

_MISSING = object()


class PatchSet:
    """A group of attribute replacements that can be undone in reverse order."""

    def __init__(self) -> None:
        self._originals: list[tuple[Any, str, Any]] = []
        self._undo: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def replace(self, owner: Any, name: str, value: Any) -> Any:
        """Set ``owner.name = value`` and return the attribute it replaced."""
        original = owner.__dict__.get(name, _MISSING) if hasattr(owner, "__dict__") else _MISSING
        if original is _MISSING:
            raise AttributeError(f"{owner!r} has no attribute {name!r} to patch")
        with self._lock:
            self._originals.append((owner, name, original))
            setattr(owner, name, value)
        return original

    def override(self, owner: Any, name: str, value: Any) -> None:
        """Define ``owner.name`` over an attribute ``owner`` inherits (removed on restore)."""
        if not hasattr(owner, name):
            raise AttributeError(f"{owner!r} has no attribute {name!r} to override")
        if name in owner.__dict__:
            self.replace(owner, name, value)
            return
        setattr(owner, name, value)
        self.on_restore(lambda: delattr(owner, name))

    def add(self, owner: Any, name: str, value: Any) -> None:
        """Add ``owner.name = value`` where moto has no such attribute (removed on restore)."""
        if name in owner.__dict__:
            raise AttributeError(f"{owner!r} already has {name!r}: the patch would hide it")
        setattr(owner, name, value)
        self.on_restore(lambda: delattr(owner, name))

    def on_restore(self, undo: Callable[[], None]) -> None:
        """Run ``undo`` when the patches are restored (for changes that are not attributes)."""
        with self._lock:
            self._undo.append(undo)

    def restore(self) -> None:
        """Put every replaced attribute back and run the registered undo actions."""
        with self._lock:
            while self._undo:
                self._undo.pop()()
            while self._originals:
                owner, name, original = self._originals.pop()
                setattr(owner, name, original)
