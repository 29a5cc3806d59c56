"""Finding and reading the files to ingest: local paths (files or folders) and http(s) URLs."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx

from knowledge.parsing import SUPPORTED_SUFFIXES

_CONTENT_TYPE_SUFFIX = {"text/html": ".html", "application/pdf": ".pdf", "text/markdown": ".md",
                        "text/plain": ".txt",
                        "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx"}


@dataclass(frozen=True)
class SourceRef:
    """One file to ingest. ``key`` identifies it in the store (absolute path or URL)."""

    key: str
    file_name: str
    path: Path | None = None
    url: str | None = None


@dataclass(frozen=True)
class LoadedSource:
    ref: SourceRef
    data: bytes
    content_hash: str


class SourceError(Exception):
    """A source that cannot be read; the message names it and says why."""


def is_url(value: str) -> bool:
    return urlparse(value).scheme in ("http", "https")


def discover(targets: list[str]) -> tuple[list[SourceRef], list[tuple[str, str]], list[str]]:
    """Expand paths and URLs into sources.

    :returns: sources, errors (target, reason) and files skipped in folders for their type.
    """
    sources: list[SourceRef] = []
    errors: list[tuple[str, str]] = []
    skipped: list[str] = []
    seen: set[str] = set()

    def add(ref: SourceRef) -> None:
        if ref.key not in seen:
            seen.add(ref.key)
            sources.append(ref)

    for target in targets:
        if is_url(target):
            add(SourceRef(key=target, file_name=Path(urlparse(target).path).name or "index.html", url=target))
            continue
        path = Path(target)
        if not path.exists():
            errors.append((target, "no such file or directory"))
        elif path.is_file():
            add(SourceRef(key=str(path.resolve()), file_name=path.name, path=path.resolve()))
        elif path.is_dir():
            for file in _walk(path):
                if file.suffix.lower() in SUPPORTED_SUFFIXES:
                    add(SourceRef(key=str(file.resolve()), file_name=file.name, path=file.resolve()))
                else:
                    skipped.append(str(file))
        else:
            errors.append((target, "not a regular file or directory"))
    return sources, errors, skipped


def _walk(root: Path) -> Iterator[Path]:
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(directory) / name


def load(ref: SourceRef, *, max_bytes: int, timeout_s: float = 20.0) -> LoadedSource:
    """Read a source, refusing anything over ``max_bytes`` before reading it whole.

    :raises SourceError: unreadable, too large, or an HTTP error.
    """
    limit_text = f"the limit of {max_bytes / 1_048_576:.1f} MB (SUPPORTBOT_CHUNKING__MAX_FILE_BYTES)"
    if ref.path is not None:
        try:
            info = ref.path.stat()
            # A pipe, socket or device (or a link to one, e.g. /dev/zero) inside a folder would block
            # or never end: only regular files are read.
            if not stat.S_ISREG(info.st_mode):
                raise SourceError("not a regular file (a pipe, socket or device)")
            if info.st_size > max_bytes:
                raise SourceError(f"file is {info.st_size / 1_048_576:.1f} MB, over {limit_text}")
            data = ref.path.read_bytes()
        except OSError as exc:
            raise SourceError(f"cannot read: {exc.strerror or exc}") from exc
    else:
        data, ref = _download(ref, max_bytes=max_bytes, limit_text=limit_text, timeout_s=timeout_s)
    return LoadedSource(ref=ref, data=data, content_hash=hashlib.sha256(data).hexdigest())


def _download(ref: SourceRef, *, max_bytes: int, limit_text: str, timeout_s: float) -> tuple[bytes, SourceRef]:
    if ref.url is None:
        raise SourceError(f"{ref.key}: neither a path nor a URL")
    try:
        with httpx.stream("GET", ref.url, timeout=timeout_s, follow_redirects=True) as response:
            if response.status_code >= 400:
                raise SourceError(f"HTTP {response.status_code} from {ref.url}")
            chunks: list[bytes] = []
            total = 0
            for chunk in response.iter_bytes():
                total += len(chunk)
                if total > max_bytes:
                    raise SourceError(f"download exceeds {limit_text}")
                chunks.append(chunk)
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    except httpx.HTTPError as exc:
        raise SourceError(f"cannot download {ref.url}: {exc}") from exc
    name = ref.file_name
    if Path(name).suffix.lower() not in SUPPORTED_SUFFIXES and content_type in _CONTENT_TYPE_SUFFIX:
        name = (name or "index") + _CONTENT_TYPE_SUFFIX[content_type]
    return b"".join(chunks), SourceRef(key=ref.key, file_name=name, url=ref.url)
