"""Bad input to ``Indexer.ingest``: every case is reported with the source (path or URL) and the
reason, the other targets go on, and the chunks indexed before stay exactly as they were (same ids,
same content, same count) in memory and in the saved index. Also: a crash during the save leaves a
complete index behind, and the index reloads on start.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from haystack.document_stores.types import DocumentStore

from core.errors import BackendUnavailableError
from core.settings import Settings
from knowledge.document_store import build_document_store, index_path
from knowledge.indexing import Indexer, IngestSummary, SourceMeta

pytestmark = pytest.mark.slow  # every test embeds with the real MiniLM model

REPO = Path(__file__).resolve().parents[2]
LABELS = SourceMeta(tenant="acme", product="demo")
MB = 1024 * 1024

ROUTER_GUIDE = """# Nimbus router guide

## Factory reset

Hold the reset button for 10 seconds until the light blinks amber.

## Firmware

Firmware updates install at 03:00 when automatic updates are on.
"""
KETTLE_NOTES = "KETTLE CARE\n\nDescale the kettle every month with citric acid.\n"
PRINTER_NOTES = "# Printer\n\nLoad paper with the glossy side down.\n"

Snapshot = dict[str, tuple[str, str, str]]  # chunk id -> (content, source, source hash)


def snapshot(store: DocumentStore) -> Snapshot:
    return {doc.id: (doc.content or "", str(doc.meta["source"]), str(doc.meta["source_hash"]))
            for doc in store.filter_documents()}


@dataclass(frozen=True)
class Indexed:
    """A data dir that already holds the baseline manuals (``chunks``)."""

    settings: Settings
    manuals: Path
    chunks: Snapshot

    def ingest(self, targets: list[Path | str], settings: Settings | None = None
               ) -> tuple[IngestSummary, DocumentStore]:
        settings = settings or self.settings
        store = build_document_store(settings)  # reloads the saved index, as every process start does
        return Indexer(settings, store).ingest([str(t) for t in targets], LABELS), store

    def assert_kept(self, store: DocumentStore, summary: IngestSummary) -> Snapshot:
        """The baseline chunks are all there, unchanged, in memory and on disk; the only other
        chunks are the ones this run wrote (none twice). :returns: those new chunks."""
        current = snapshot(store)
        assert snapshot(build_document_store(self.settings)) == current
        assert {chunk_id: current.get(chunk_id) for chunk_id in self.chunks} == self.chunks
        assert len(current) == len(self.chunks) + summary.chunks_written
        return {chunk_id: value for chunk_id, value in current.items() if chunk_id not in self.chunks}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Snapshot]:
    root = tmp_path_factory.mktemp("baseline")
    manuals = root / "manuals"
    manuals.mkdir()
    (manuals / "router.md").write_text(ROUTER_GUIDE, encoding="utf-8")
    (manuals / "kettle.txt").write_text(KETTLE_NOTES, encoding="utf-8")
    settings = Settings(data_dir=root / "data")
    store = build_document_store(settings)
    summary = Indexer(settings, store).ingest([str(manuals)], LABELS)
    assert (summary.new, summary.failed) == (2, []) and summary.chunks_written >= 3
    return manuals, Path(index_path(settings)), snapshot(store)


@pytest.fixture
def indexed(baseline: tuple[Path, Path, Snapshot], tmp_path: Path) -> Indexed:
    """A private copy of the baseline index, so each test may add to it."""
    manuals, index_file, chunks = baseline
    settings = Settings(data_dir=tmp_path / "data")
    copy = Path(index_path(settings))
    copy.parent.mkdir(parents=True)
    shutil.copyfile(index_file, copy)
    return Indexed(settings=settings, manuals=manuals, chunks=chunks)


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


# --- files that cannot be indexed -----------------------------------------------------------------

BAD_FILES = [
    ("garbage.pdf", random.Random(1).randbytes(64 * 1024), "not a PDF (no %PDF header)"),
    ("truncated.pdf", b"%PDF-1.7\n" + random.Random(2).randbytes(16 * 1024), "not a readable PDF"),
    ("garbage.docx", random.Random(3).randbytes(16 * 1024), "not a DOCX file (not a zip archive)"),
    ("garbage.html", b"\x00\x01\x02\xff" * 1000, "binary content (NUL bytes), not HTML"),
    ("empty.md", b"", "empty file"),
    ("blank.txt", b" \n\t\r\n  ", "empty file"),
    ("nul-bytes.txt", b"\x7fELF\x02\x01\x01\x00" * 200, "binary content (NUL bytes), not text"),
    ("control-chars.md", bytes(range(1, 32)) * 100, "binary content, not text"),
    ("scripts-only.html", b"<html><head><script>var a = 1;</script><style>p {}</style></head>"
                          b"<body><script>b()</script></body></html>", "no text found"),
]


@pytest.mark.parametrize(("name", "data", "reason"), BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_a_bad_file_is_reported_and_loses_nothing(indexed: Indexed, tmp_path: Path, name: str, data: bytes,
                                                  reason: str) -> None:
    bad = write(tmp_path / "incoming" / name, data)
    summary, store = indexed.ingest([bad.parent])
    assert len(summary.failed) == 1
    source, message = summary.failed[0]
    assert source == str(bad.resolve()) and message.startswith(reason)
    assert (summary.new, summary.changed, summary.chunks_written, summary.chunks_deleted) == (0, 0, 0, 0)
    assert indexed.assert_kept(store, summary) == {}


def test_missing_paths_are_reported_and_the_other_targets_go_on(indexed: Indexed, tmp_path: Path) -> None:
    good = write(tmp_path / "incoming" / "printer.md", PRINTER_NOTES)
    missing = [tmp_path / "nope", tmp_path / "incoming" / "gone.md"]
    summary, store = indexed.ingest([missing[0], good, missing[1]])
    assert summary.failed == [(str(path), "no such file or directory") for path in missing]
    assert summary.new == 1
    added = indexed.assert_kept(store, summary)
    assert added and {source for _, source, _ in added.values()} == {str(good.resolve())}


@pytest.mark.timeout(300)  # without the check, reading the pipe blocks forever
@pytest.mark.skipif(not hasattr(os, "mkfifo") or not Path("/dev/zero").exists(), reason="needs POSIX pipes")
def test_pipes_and_devices_in_a_folder_are_refused_without_reading(indexed: Indexed, tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    good = write(folder / "printer.md", PRINTER_NOTES)
    os.mkfifo(folder / "pipe.md")
    (folder / "zero.txt").symlink_to("/dev/zero")  # an endless file of size 0
    summary, store = indexed.ingest([folder])
    reason = "not a regular file (a pipe, socket or device)"
    assert sorted(summary.failed) == [("/dev/zero", reason), (str((folder / "pipe.md").resolve()), reason)]
    assert summary.new == 1
    assert {source for _, source, _ in indexed.assert_kept(store, summary).values()} == {str(good.resolve())}


def test_a_200_mb_file_is_refused_by_its_size_without_being_read(indexed: Indexed, tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    good = write(folder / "printer.md", PRINTER_NOTES)
    big = folder / "big.txt"
    with big.open("wb") as stream:
        stream.truncate(200 * MB)  # sparse: takes neither disk space nor time to write
    assert indexed.settings.chunking.max_file_bytes == 100 * MB  # the default limit

    tracemalloc.start()
    try:
        summary, store = indexed.ingest([folder])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary.failed == [(str(big.resolve()), "file is 200.0 MB, over the limit of 100.0 MB "
                                                   "(SUPPORTBOT_CHUNKING__MAX_FILE_BYTES)")]
    assert peak < 50 * MB, f"ingest allocated {peak / MB:.0f} MB: the file was read"
    assert summary.new == 1
    assert {source for _, source, _ in indexed.assert_kept(store, summary).values()} == {str(good.resolve())}


# --- content that needs care --------------------------------------------------------------------

SCRIPT_MARKERS = ("STYLE_MARKER", "HEAD_SCRIPT_MARKER", "JSONLD_MARKER", "ONLOAD_MARKER", "BODY_SCRIPT_MARKER",
                  "NOSCRIPT_MARKER", "INLINE_SCRIPT_MARKER", "TEMPLATE_MARKER", "UPPERCASE_SCRIPT_MARKER",
                  "UNCLOSED_SCRIPT_MARKER")
SCRIPTED_PAGE = """<!DOCTYPE html>
<html><head><title>Nimbus R7 troubleshooting</title>
<style>.banner::after { content: "STYLE_MARKER"; }</style>
<script>var token = "HEAD_SCRIPT_MARKER";</script>
<script type="application/ld+json">{"name": "JSONLD_MARKER"}</script>
</head>
<body onload="ONLOAD_MARKER()">
<h1>Troubleshooting</h1>
<p>If the status light blinks red, restart the router.</p>
<script>document.write("BODY_SCRIPT_MARKER");</script>
<noscript>NOSCRIPT_MARKER: please enable JavaScript</noscript>
<h2>Error codes</h2>
<p>E31 means the uplink cable is unplugged.<script>track("INLINE_SCRIPT_MARKER");</script></p>
<template><p>TEMPLATE_MARKER</p></template>
<SCRIPT LANGUAGE="javascript">UPPERCASE_SCRIPT_MARKER();</SCRIPT>
<p>E40 means the fan is blocked.</p>
<script>unterminated("UNCLOSED_SCRIPT_MARKER");
"""


def test_html_scripts_and_styles_never_reach_the_index(indexed: Indexed, tmp_path: Path) -> None:
    page = write(tmp_path / "incoming" / "troubleshooting.html", SCRIPTED_PAGE)
    summary, store = indexed.ingest([page])
    assert (summary.new, summary.failed) == (1, [])
    added = indexed.assert_kept(store, summary)
    text = "\n".join(content for content, _, _ in added.values())
    assert "restart the router" in text and "E31 means the uplink" in text and "E40 means the fan" in text
    # Not in any chunk's text, title or heading path: the saved index holds none of them.
    saved = Path(index_path(indexed.settings)).read_text(encoding="utf-8")
    assert [marker for marker in SCRIPT_MARKERS if marker in saved] == []


def test_non_utf8_text_is_decoded_and_reported(indexed: Indexed, tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    files = {
        "cafe-cp1252.txt": ("CLEANING\n\nDon’t use vinegar: descale with citric acid (5 €) after 200 cafés.\n",
                            "cp1252", "Don’t use vinegar: descale with citric acid (5 €) after 200 cafés."),
        "entretien-latin1.md": ("# Entretien\n\nDétartrez après 200 cafés; Größe 1,5 l.\n", "latin-1",
                                "Détartrez après 200 cafés; Größe 1,5 l."),
        "garantie-cp1252.html": ("<html><body><h1>Garantie</h1><p>La garantie couvre 2 ans – pièces et "
                                 "main-d’œuvre.</p></body></html>", "cp1252",
                                 "La garantie couvre 2 ans – pièces et main-d’œuvre."),
        "adapter-utf16.txt": ("USB ADAPTER\n\nThe adapter’s LED turns grün while charging.\n", "utf-16",
                              "The adapter’s LED turns grün while charging."),
    }
    paths = {name: write(folder / name, text.encode(encoding)) for name, (text, encoding, _) in files.items()}
    summary, store = indexed.ingest([folder])
    assert (summary.new, summary.failed) == (4, [])
    added = indexed.assert_kept(store, summary)
    for name, (_, _, phrase) in files.items():
        chunks = [content for content, source, _ in added.values() if source == str(paths[name].resolve())]
        assert any(phrase in " ".join(chunk.split()) for chunk in chunks), (name, chunks)
    assert not any("\ufffd" in content for content, _, _ in added.values())
    # Windows-1252 is a guess, so it is reported; UTF-16 with its byte order mark is not.
    warned = {source: reason for source, reason in summary.warnings}
    assert set(warned) == {str(paths[name].resolve()) for name in files if "utf16" not in name}
    assert all(reason.startswith("not valid UTF-8 (byte ") and reason.endswith("decoded as Windows-1252")
               for reason in warned.values())


def test_duplicate_files_are_reported_and_indexed_once(indexed: Indexed, tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    first = write(folder / "a-printer.md", PRINTER_NOTES)
    twin = write(folder / "b-printer-copy.md", PRINTER_NOTES)
    old_copy = write(folder / "c-router-copy.md", ROUTER_GUIDE)  # same bytes as a baseline file
    expected_duplicates = [(str(twin.resolve()), str(first.resolve())),
                           (str(old_copy.resolve()), str((indexed.manuals / "router.md").resolve()))]

    summary, store = indexed.ingest([folder])
    assert (summary.new, summary.failed, summary.duplicates) == (1, [], expected_duplicates)
    added = indexed.assert_kept(store, summary)
    assert added and {source for _, source, _ in added.values()} == {str(first.resolve())}

    again, store = indexed.ingest([folder])
    assert (again.new, again.unchanged, again.chunks_written, again.duplicates) == (0, 1, 0, expected_duplicates)
    assert snapshot(store) == {**indexed.chunks, **added}


@pytest.mark.timeout(600)
def test_a_folder_of_3000_files_is_ingested_and_reported(indexed: Indexed, tmp_path: Path) -> None:
    """Thousands of files neither crash nor stall ingestion, and every one is accounted for. Embedding
    3,000 distinct chunks takes minutes on 2 CPU cores, so 200 distinct files are copied 15 times:
    the copies go through discovery, reading and hashing and are reported as duplicates."""
    folder = tmp_path / "kb"
    distinct, copies = 200, 15
    originals: list[Path] = []
    duplicates: list[tuple[str, str]] = []
    for copy in range(copies):  # the folder walk is sorted, so copy-00 holds the originals
        for n in range(distinct):
            suffix = ".md" if n % 2 else ".txt"
            path = write(folder / f"copy-{copy:02d}" / f"part-{n:03d}{suffix}",
                         f"# Part {n}\n\nPart {n} fits slot {n % 7} of rack {n // 7}; order code P-{n:04d}.\n")
            if copy == 0:
                originals.append(path)
            else:
                duplicates.append((str(path.resolve()), str(originals[n].resolve())))
    for n in range(20):
        write(folder / "assets" / f"photo-{n:02d}.png", b"\x89PNG\r\n")
    assert len(originals) + len(duplicates) == 3000

    summary, store = indexed.ingest([folder])
    assert (summary.new, summary.changed, summary.unchanged, summary.failed) == (distinct, 0, 0, [])
    assert sorted(summary.duplicates) == sorted(duplicates)
    assert len(summary.skipped_unsupported) == 20
    added = indexed.assert_kept(store, summary)
    assert {source for _, source, _ in added.values()} == {str(path.resolve()) for path in originals}

    again, store = indexed.ingest([folder])
    assert (again.new, again.changed, again.unchanged, again.failed) == (0, 0, distinct, [])
    assert sorted(again.duplicates) == sorted(duplicates)
    assert (again.chunks_written, again.chunks_deleted) == (0, 0)
    assert snapshot(store) == {**indexed.chunks, **added}


# --- URLs -----------------------------------------------------------------------------------------

URL_LIMIT = 1 * MB
_PAGES: dict[str, tuple[int, str, bytes]] = {  # path -> (status, content type, body)
    "/docs/troubleshooting.html": (200, "text/html; charset=utf-8", SCRIPTED_PAGE.encode("utf-8")),
    "/docs/printer": (200, "text/markdown", PRINTER_NOTES.encode("utf-8")),
    "/docs/too-big.txt": (200, "text/plain", b"spam " * (2 * URL_LIMIT // 5)),
}


class _Site(BaseHTTPRequestHandler):
    """A static site; ``/docs/endless`` streams without a Content-Length (the connection's end marks
    the body's end), 16 MB in all, so a client that ignored its limit would read it whole and fail."""

    def do_GET(self) -> None:
        try:
            if self.path == "/docs/endless":
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                for _ in range(256):
                    self.wfile.write(b"more " * 13_107)
                return
            status, content_type, body = _PAGES.get(self.path, (404, "text/plain", b"not found"))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            return  # the client stopped reading: what a size limit is for

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_urls_are_ingested_and_bad_ones_reported(indexed: Indexed, site: str) -> None:
    settings = Settings(data_dir=indexed.settings.data_dir, chunking={"max_file_bytes": URL_LIMIT})
    page, markdown = f"{site}/docs/troubleshooting.html", f"{site}/docs/printer"
    missing, too_big, endless = f"{site}/docs/missing.html", f"{site}/docs/too-big.txt", f"{site}/docs/endless"
    with socket.socket() as closed:  # bound but not listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        unreachable = f"http://127.0.0.1:{closed.getsockname()[1]}/manual.html"
        summary, store = indexed.ingest([missing, page, too_big, unreachable, endless, markdown], settings)

    reasons = dict(summary.failed)
    assert list(reasons) == [missing, too_big, unreachable, endless]
    assert reasons[missing] == f"HTTP 404 from {missing}"
    limit = "download exceeds the limit of 1.0 MB (SUPPORTBOT_CHUNKING__MAX_FILE_BYTES)"
    assert reasons[too_big] == limit and reasons[endless] == limit
    assert reasons[unreachable].startswith(f"cannot download {unreachable}: ")
    assert summary.new == 2

    added = indexed.assert_kept(store, summary)
    assert {source for _, source, _ in added.values()} == {page, markdown}
    chunks = [doc for doc in store.filter_documents() if doc.id in added]
    assert all(doc.meta["url"] == doc.meta["source"] for doc in chunks)
    assert {doc.meta["file_name"] for doc in chunks} == {"troubleshooting.html", "printer.md"}
    text = "\n".join(doc.content or "" for doc in chunks)
    assert "E31 means the uplink" in text and "glossy side down" in text
    assert [marker for marker in SCRIPT_MARKERS if marker in text] == []

    again, store = indexed.ingest([page, markdown], settings)
    assert (again.unchanged, again.chunks_written, again.failed) == (2, 0, [])
    assert snapshot(store) == {**indexed.chunks, **added}


# --- the saved index ------------------------------------------------------------------------------

# Ingests into a data dir and stops, waiting to be killed, at one point of the save: half-way through
# writing the temporary file, or just after it replaced the index.
_CRASHING_INGEST = r"""
import json, os, sys, time, types
import knowledge.persistent_store as persistent_store
from core.settings import Settings
from knowledge.document_store import build_document_store, index_path
from knowledge.indexing import Indexer, SourceMeta

phase, data_dir, target = sys.argv[1:4]
settings = Settings(data_dir=data_dir)

def wait_to_be_killed(marker):
    print(marker, flush=True)
    time.sleep(3600)

def dump_half(payload, stream):
    text = json.dumps(payload)
    stream.write(text[: len(text) // 2])
    stream.flush()
    os.fsync(stream.fileno())
    wait_to_be_killed("HALF-WRITTEN")

real_replace = os.replace
def replace_then_wait(source, destination):
    real_replace(source, destination)
    if str(destination) == index_path(settings):
        wait_to_be_killed("REPLACED")

if phase == "while-writing":
    persistent_store.json = types.SimpleNamespace(dump=dump_half, loads=json.loads)
else:
    os.replace = replace_then_wait
Indexer(settings, build_document_store(settings)).ingest([target], SourceMeta(tenant="acme", product="demo"))
print("SAVED", flush=True)
"""


@pytest.mark.timeout(600)
@pytest.mark.parametrize(("phase", "marker"), [("while-writing", "HALF-WRITTEN"), ("after-replace", "REPLACED")])
def test_a_crash_during_the_save_leaves_a_complete_index(indexed: Indexed, tmp_path: Path, phase: str,
                                                         marker: str) -> None:
    new_file = write(tmp_path / "incoming" / "printer.md", PRINTER_NOTES)
    index_file = Path(index_path(indexed.settings))
    before = index_file.read_bytes()
    log = tmp_path / "child.log"
    with log.open("w") as child_stderr:
        child = subprocess.Popen(
            [sys.executable, "-c", _CRASHING_INGEST, phase, str(indexed.settings.data_dir), str(new_file)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=child_stderr, text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
        assert child.stdout is not None
        try:
            lines = []
            for line in child.stdout:  # blocks until the child reaches the point of the save, or ends
                lines.append(line.strip())
                if line.strip() == marker:
                    break
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
            child.stdout.close()
    assert lines[-1:] == [marker], log.read_text()
    assert child.returncode == -signal.SIGKILL

    leftovers = sorted(index_file.parent.glob(f"{index_file.name}*.tmp"))
    reloaded = snapshot(build_document_store(indexed.settings))  # what the next start sees
    if phase == "while-writing":  # the old index, untouched; the half-written file is beside it
        assert index_file.read_bytes() == before and reloaded == indexed.chunks
        assert len(leftovers) == 1
        with pytest.raises(json.JSONDecodeError):
            json.loads(leftovers[0].read_text(encoding="utf-8"))
    else:  # the new index, complete
        assert leftovers == []
        assert {chunk_id: reloaded.get(chunk_id) for chunk_id in indexed.chunks} == indexed.chunks
        added = {source for chunk_id, (_, source, _) in reloaded.items() if chunk_id not in indexed.chunks}
        assert added == {str(new_file.resolve())}

    # The next run works with whatever the crash left behind, and does not index the file twice.
    summary, store = indexed.ingest([new_file])
    assert summary.failed == []
    if phase == "while-writing":
        assert summary.new == 1
        added = indexed.assert_kept(store, summary)
        assert {source for _, source, _ in added.values()} == {str(new_file.resolve())}
    else:
        assert (summary.unchanged, summary.chunks_written) == (1, 0)
        assert snapshot(store) == reloaded == snapshot(build_document_store(indexed.settings))


def test_a_corrupt_index_file_is_reported_with_its_path(indexed: Indexed) -> None:
    index_file = Path(index_path(indexed.settings))
    index_file.write_bytes(index_file.read_bytes()[: index_file.stat().st_size // 2])  # as a non-atomic write leaves it
    with pytest.raises(BackendUnavailableError, match=rf"cannot read the index file {re.escape(str(index_file))}: "
                                                      r".*Move it away and re-run `supportbot ingest`"):
        build_document_store(indexed.settings)
