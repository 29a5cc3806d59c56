"""The adapter registry: versioned adapter directories per product line (or tenant), a ``current``
pointer per line, and the history that ``rollback`` walks back.

Layout::

    <data_dir>/adapters/<line>/v1/             adapter_config.json, adapter_model.safetensors, manifest.json
    <data_dir>/adapters/<line>/current         the promoted version's name (replaced atomically)
    <data_dir>/adapters/<line>/history.jsonl   one line per promote / rollback

Serving: the local generator loads ``current_path(line)`` (``LocalGenerator.load_adapter`` swaps it
without a restart). TGI loads adapters at launch, so a rollout there is: promote, set
``LORA_ADAPTERS`` to :meth:`AdapterRegistry.tgi_lora_adapters_value`, restart TGI (or roll its
replicas), then send the adapter name (``<line>-<version>``) as the ``model`` field of requests.

Usage::

    registry = AdapterRegistry(settings.data_dir / "adapters")
    version = registry.register(Path("runs/lora-1"), line="default")
    registry.promote(version, line="default")
    registry.rollback(line="default")
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import ConfigError, InvalidInputError, NotFoundError

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
MANIFEST = "manifest.json"
POINTER = "current"
HISTORY = "history.jsonl"
DEFAULT_LINE = "default"
_LINE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_VERSION = re.compile(r"^v(\d+)$")


@dataclass(frozen=True)
class AdapterVersion:
    line: str
    version: str
    path: Path
    manifest: dict[str, Any]
    current: bool


def validate_adapter_dir(path: Path) -> dict[str, Any]:
    """Check that ``path`` holds a loadable peft adapter; returns its manifest (``{}`` if none).

    :raises ConfigError: a missing file, unreadable JSON or safetensors that do not open.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    missing = [name for name in ADAPTER_FILES if not (path / name).is_file()]
    if missing:
        raise ConfigError(f"{path} is not an adapter directory (missing {', '.join(missing)})")
    try:
        config = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8")) if (path / MANIFEST).is_file() else {}
    except (OSError, ValueError) as error:
        raise ConfigError(f"the adapter {path} has an unreadable JSON file: {error}") from error
    if not isinstance(config, dict) or "peft_type" not in config or not isinstance(manifest, dict):
        raise ConfigError(f"the adapter {path} has no valid adapter_config.json / manifest.json")
    try:
        with safe_open(str(path / "adapter_model.safetensors"), framework="pt") as weights:
            names = list(weights.keys())
    except (OSError, SafetensorError) as error:
        raise ConfigError(f"the adapter weights of {path} are corrupt: {error}") from error
    if not names:
        raise ConfigError(f"the adapter {path} has no weights")
    return manifest


class AdapterRegistry:
    """:param root: the registry directory (``data_dir/adapters``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _line_dir(self, line: str) -> Path:
        if not _LINE.match(line):
            raise InvalidInputError(f"adapter line {line!r} must be 1-64 of a-z, 0-9, '-', '_'")
        return self.root / line

    def lines(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _LINE.match(p.name))

    def versions(self, line: str = DEFAULT_LINE) -> list[str]:
        """The line's versions, oldest first."""
        directory = self._line_dir(line)
        if not directory.is_dir():
            return []
        found = [(int(m.group(1)), p.name) for p in directory.iterdir() if p.is_dir() and (m := _VERSION.match(p.name))]
        return [name for _, name in sorted(found)]

    def path(self, version: str, *, line: str = DEFAULT_LINE) -> Path:
        """:raises NotFoundError: no such version in the line."""
        path = self._line_dir(line) / version
        if not _VERSION.match(version) or not path.is_dir():
            raise NotFoundError(f"no adapter version {version!r} in line {line!r} "
                                f"(have: {', '.join(self.versions(line)) or 'none'})")
        return path

    def current(self, line: str = DEFAULT_LINE) -> str | None:
        pointer = self._line_dir(line) / POINTER
        if not pointer.is_file():
            return None
        version = pointer.read_text(encoding="utf-8").strip()
        return version or None

    def current_path(self, line: str = DEFAULT_LINE) -> Path | None:
        version = self.current(line)
        return self.path(version, line=line) if version else None

    def register(self, source: Path, *, line: str = DEFAULT_LINE) -> str:
        """Copy a trained adapter into the line as its next version (not promoted).

        :returns: the new version, ``v<n>``.
        :raises ConfigError: when ``source`` is not a valid adapter directory.
        """
        manifest = validate_adapter_dir(source)
        directory = self._line_dir(line)
        directory.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".register-", dir=directory))
        try:
            for name in (*ADAPTER_FILES, "metrics.jsonl", "README.md"):
                if (Path(source) / name).is_file():
                    shutil.copy2(Path(source) / name, staging / name)
            for _attempt in range(100):  # another process may claim the same number first
                existing = self.versions(line)
                number = int(existing[-1][1:]) + 1 if existing else 1
                version = f"v{number}"
                record = {**manifest, "version": version, "line": line,
                          "registered_at": datetime.now(UTC).isoformat(), "registered_from": str(Path(source).resolve())}
                (staging / MANIFEST).write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
                try:
                    os.rename(staging, directory / version)
                except OSError:
                    continue
                return version
            raise ConfigError(f"could not allocate a version in {directory}")
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def promote(self, version: str, *, line: str = DEFAULT_LINE) -> str | None:
        """Make ``version`` the line's current adapter.

        :returns: the version that was current before (None if none).
        :raises NotFoundError: no such version.
        :raises ConfigError: the version's files are corrupt, or it was trained on another base
            model than the current one (the current one keeps serving).
        """
        path = self.path(version, line=line)
        manifest = validate_adapter_dir(path)
        previous = self.current(line)
        if previous is not None and previous != version:
            before = validate_adapter_dir(self.path(previous, line=line))
            old, new = before.get("base_model_config_sha256"), manifest.get("base_model_config_sha256")
            if old and new and old != new:
                raise ConfigError(f"{line}/{version} was trained on another base model than the current "
                                  f"{line}/{previous}; serve it on its own line")
        self._set_pointer(line, version, action="promote", previous=previous)
        return previous

    def rollback(self, *, line: str = DEFAULT_LINE) -> str:
        """Return to the version that was current before the current one was promoted.

        :returns: the version now current.
        :raises InvalidInputError: when there is nothing to roll back to.
        """
        current = self.current(line)
        if current is None:
            raise InvalidInputError(f"line {line!r} has no current adapter to roll back")
        target = None
        for entry in reversed(self.history(line)):
            if entry["action"] == "promote" and entry["version"] == current:
                target = entry["previous"]
                break
        if not target or target == current:
            raise InvalidInputError(f"line {line!r}: {current} has no earlier version to roll back to")
        validate_adapter_dir(self.path(target, line=line))
        self._set_pointer(line, target, action="rollback", previous=current)
        return str(target)

    def history(self, line: str = DEFAULT_LINE) -> list[dict[str, Any]]:
        path = self._line_dir(line) / HISTORY
        if not path.is_file():
            return []
        return [json.loads(row) for row in path.read_text(encoding="utf-8").splitlines() if row.strip()]

    def _set_pointer(self, line: str, version: str, *, action: str, previous: str | None) -> None:
        """Write the pointer to a temporary file and rename it over ``current``: a reader sees the
        old version or the new one, never a partial name."""
        directory = self._line_dir(line)
        descriptor, temporary = tempfile.mkstemp(prefix=".current-", dir=directory)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                file.write(version + "\n")
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, directory / POINTER)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        entry = {"action": action, "version": version, "previous": previous, "at": datetime.now(UTC).isoformat()}
        with (directory / HISTORY).open("a", encoding="utf-8") as file:
            file.write(json.dumps(entry) + "\n")

    def listing(self) -> list[AdapterVersion]:
        rows = []
        for line in self.lines():
            current = self.current(line)
            for version in self.versions(line):
                path = self.path(version, line=line)
                try:
                    manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    manifest = {"error": "unreadable manifest"}
                rows.append(AdapterVersion(line=line, version=version, path=path, manifest=manifest,
                                           current=version == current))
        return rows

    def tgi_lora_adapters_value(self) -> str:
        """``LORA_ADAPTERS`` for TGI: ``<line>-<version>=<path>`` for each line's current adapter."""
        entries = []
        for line in self.lines():
            version = self.current(line)
            if version:
                entries.append(f"{line}-{version}={self.path(version, line=line).resolve()}")
        return ",".join(entries)
