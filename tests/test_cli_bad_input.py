"""Bad input through the ``supportbot`` command: one clear line per problem (source and reason, or
the query's fault), the documented exit status, and the saved index left as it was."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest

from core.settings import Settings
from knowledge.document_store import index_path
from knowledge.persistent_store import PersistentDocumentStore
from tests.knowledge.test_ingest_bad_input import KETTLE_NOTES, PRINTER_NOTES, ROUTER_GUIDE, Snapshot, snapshot
from tests.test_cli import run_cli

pytestmark = pytest.mark.slow  # each call starts a process; ingest loads the real MiniLM model


def index_file_of(data_dir: Path) -> Path:
    return Path(index_path(Settings(data_dir=data_dir)))


def saved_chunks(data_dir: Path) -> Snapshot:
    return snapshot(PersistentDocumentStore(path=str(index_file_of(data_dir))))


@pytest.fixture(scope="module")
def cli_baseline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("cli-baseline")
    manuals = root / "manuals"
    manuals.mkdir()
    (manuals / "router.md").write_text(ROUTER_GUIDE, encoding="utf-8")
    (manuals / "kettle.txt").write_text(KETTLE_NOTES, encoding="utf-8")
    result = run_cli("ingest", str(manuals), "--json", data_dir=root / "data")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["new"] == 2
    return manuals, root / "data"


@pytest.fixture
def data_dir(cli_baseline: tuple[Path, Path], tmp_path: Path) -> Path:
    """A private copy of the baseline data dir."""
    return Path(shutil.copytree(cli_baseline[1], tmp_path / "data"))


LIMIT_MESSAGE = "over the limit of 2000 (SUPPORTBOT_RETRIEVAL__MAX_QUERY_CHARS)"


@pytest.mark.parametrize(("query", "message"), [
    ("", "the query is empty"),
    (" \t\n ", "the query is empty"),
    (("reset the router " * 6000)[:100_000], f"the query is 100000 characters, {LIMIT_MESSAGE}"),
], ids=["empty", "whitespace", "100kB"])
def test_search_refuses_an_empty_or_huge_query(data_dir: Path, query: str, message: str) -> None:
    index_file = index_file_of(data_dir)
    before, chunks = index_file.read_bytes(), saved_chunks(data_dir)
    result = run_cli("search", query, data_dir=data_dir)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == f"supportbot search: error: {message}"
    assert "Traceback" not in result.stderr
    assert index_file.read_bytes() == before and saved_chunks(data_dir) == chunks


def test_ingest_names_every_bad_target_and_keeps_the_index(data_dir: Path, tmp_path: Path) -> None:
    chunks = saved_chunks(data_dir)
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "garbage.pdf").write_bytes(random.Random(1).randbytes(32 * 1024))
    (folder / "empty.md").write_bytes(b"")
    (folder / "scripts-only.html").write_text("<script>alert(1)</script><style>p {}</style>")
    with (folder / "big.txt").open("wb") as stream:
        stream.truncate(200 * 1024 * 1024)  # sparse
    os.mkfifo(folder / "pipe.md")
    missing = tmp_path / "no-such-folder"

    result = run_cli("ingest", str(missing), str(folder), data_dir=data_dir)
    assert result.returncode == 1, result.stderr  # nothing could be ingested
    failures = [line for line in result.stderr.splitlines() if line.startswith("FAILED ")]
    resolved = folder.resolve()
    assert failures == [
        f"FAILED  {missing}: no such file or directory",
        f"FAILED  {resolved / 'big.txt'}: file is 200.0 MB, over the limit of 100.0 MB "
        "(SUPPORTBOT_CHUNKING__MAX_FILE_BYTES)",
        f"FAILED  {resolved / 'pipe.md'}: not a regular file (a pipe, socket or device)",
        f"FAILED  {resolved / 'empty.md'}: empty file",
        f"FAILED  {resolved / 'garbage.pdf'}: not a PDF (no %PDF header)",
        f"FAILED  {resolved / 'scripts-only.html'}: no text found",
    ]
    assert result.stdout.splitlines()[0] == "files: 0 new, 0 changed, 0 unchanged, 0 duplicate, 6 failed"
    assert saved_chunks(data_dir) == chunks


def test_ingest_json_reports_duplicates_warnings_and_failures(cli_baseline: tuple[Path, Path], data_dir: Path,
                                                              tmp_path: Path) -> None:
    manuals, _ = cli_baseline
    chunks = saved_chunks(data_dir)
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "router-copy.md").write_text(ROUTER_GUIDE, encoding="utf-8")
    (folder / "printer-cp1252.md").write_bytes(PRINTER_NOTES.replace("paper", "papier épais (80 g/m²)")
                                               .encode("cp1252"))
    missing = tmp_path / "gone.pdf"

    result = run_cli("ingest", str(folder), str(missing), "--json", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    printer = str((folder / "printer-cp1252.md").resolve())
    assert (summary["new"], summary["changed"], summary["unchanged"]) == (1, 0, 0)
    assert summary["failed"] == [{"source": str(missing), "reason": "no such file or directory"}]
    assert summary["duplicates"] == [{"source": str((folder / "router-copy.md").resolve()),
                                      "same_as": str((manuals / "router.md").resolve())}]
    assert [w["source"] for w in summary["warnings"]] == [printer]
    assert summary["warnings"][0]["reason"].endswith("decoded as Windows-1252")

    after = saved_chunks(data_dir)
    assert {chunk_id: after.get(chunk_id) for chunk_id in chunks} == chunks
    added = {chunk_id: value for chunk_id, value in after.items() if chunk_id not in chunks}
    assert len(added) == summary["chunks_written"] > 0
    assert {source for _, source, _ in added.values()} == {printer}
    assert any("papier épais (80 g/m²)" in content for content, _, _ in added.values())
