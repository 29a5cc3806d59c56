"""Follows the adapter registry's ``current`` pointer so a promoted adapter is served without a
restart.

The registry (``training/registry.py``) keeps ``<data_dir>/adapters/<line>/current``: a text file
holding the promoted version's name, replaced atomically; the adapter lives in
``<data_dir>/adapters/<line>/<version>/``. That file layout is the contract between the two
packages (``knowledge`` may not import ``training``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass
class AdapterPointer:
    """Usage::

        pointer = AdapterPointer(data_dir / "adapters" / "default")
        changed = pointer.poll()   # the new adapter directory when the promoted version changed, else None
    """

    line_dir: Path
    _seen: tuple[int, int] | None = None
    version: str | None = None

    def poll(self) -> Path | None:
        """One ``stat`` per call; reads the pointer only when the file was replaced."""
        pointer = self.line_dir / "current"
        try:
            status = os.stat(pointer)
        except FileNotFoundError:
            return None
        stamp = (status.st_ino, status.st_mtime_ns)
        if stamp == self._seen:
            return None
        self._seen = stamp
        version = pointer.read_text(encoding="utf-8").strip()
        if not version or version == self.version:
            return None
        self.version = version
        return self.line_dir / version
