"""Document upload (safe names, incremental), listing and deletion."""

from __future__ import annotations

import pytest

from api.document_library import safe_file_name
from core.errors import InvalidInputError, UnsupportedFileError
from tests.api.conftest import Api

pytestmark = pytest.mark.slow

DOC = b"# Zeta Pump\n\n## Priming\n\nTo prime the Zeta pump, open the bleed valve and run it for 30 seconds.\n"
QUESTION = "How do I prime the Zeta pump?"


@pytest.mark.parametrize(("given", "stored"), [
    ("manual.md", "manual.md"), ("../../etc/evil.md", "evil.md"), ("..\\..\\win\\evil.txt", "evil.txt"),
    ("/abs/path/guide.pdf", "guide.pdf"), ("we;ird$na|me.md", "we_ird_na_me.md"), ("ｆｕｌｌ.md", "full.md"),
    ("a" * 300 + ".md", "a" * 117 + ".md")])
def test_safe_file_names(given: str, stored: str) -> None:
    assert safe_file_name(given) == stored


@pytest.mark.parametrize("given", ["", "..", "../", ".md", "..."])
def test_names_with_nothing_usable_are_refused(given: str) -> None:
    with pytest.raises(InvalidInputError):
        safe_file_name(given)


@pytest.mark.parametrize("given", ["run.exe", "../../etc/passwd", "archive.md.zip"])
def test_unsupported_types_are_refused(given: str) -> None:
    with pytest.raises(UnsupportedFileError):
        safe_file_name(given)


def _search_sources(api: Api) -> list[str]:
    hits = api.client.post("/v1/search", json={"query": QUESTION}, headers=api.headers("globex")).json()["results"]
    return [hit["source"] for hit in hits]


def test_upload_list_reupload_change_and_delete(api: Api) -> None:
    upload = api.client.post("/v1/documents", files={"files": ("zeta.md", DOC)}, data={"product": "zeta"},
                             headers=api.headers("globex"))
    assert upload.status_code == 200, upload.text
    (result,) = upload.json()["results"]
    assert result["status"] == "new" and result["chunks"] >= 1
    listed = api.client.get("/v1/documents", headers=api.headers("globex")).json()
    assert listed["total"] == 1 and listed["items"][0]["source"] == "zeta.md"
    assert listed["items"][0]["product"] == "zeta" and listed["items"][0]["size_bytes"] == len(DOC)
    assert _search_sources(api) == ["zeta.md"]

    again = api.client.post("/v1/documents", files={"files": ("zeta.md", DOC)}, headers=api.headers("globex"))
    assert again.json()["results"][0]["status"] == "unchanged"
    changed = api.client.post("/v1/documents", files={"files": ("zeta.md", DOC + b"\nIt hums when primed.\n")},
                              headers=api.headers("globex"))
    assert changed.json()["results"][0]["status"] == "changed"

    assert api.client.delete("/v1/documents/zeta.md", headers=api.headers("globex")).status_code == 204
    assert _search_sources(api) == []
    assert api.client.get("/v1/documents", headers=api.headers("globex")).json()["total"] == 0
    assert api.client.delete("/v1/documents/zeta.md", headers=api.headers("globex")).status_code == 404
    assert not (api.state.settings.data_dir / "uploads" / "globex" / "zeta.md").exists()


def test_traversal_names_stay_in_the_tenants_folder(api: Api) -> None:
    response = api.client.post("/v1/documents", files={"files": ("../../../outside.md", DOC)},
                               headers=api.headers("globex"))
    assert response.json()["results"][0]["source"] == "outside.md"
    data_dir = api.state.settings.data_dir
    assert (data_dir / "uploads" / "globex" / "outside.md").is_file()
    assert not (data_dir / "outside.md").exists() and not (data_dir.parent / "outside.md").exists()


def test_unsupported_file_is_415_and_stores_nothing(api: Api) -> None:
    response = api.client.post("/v1/documents", files=[("files", ("ok.md", DOC)), ("files", ("tool.exe", b"MZ"))],
                               headers=api.headers("globex"))
    assert response.status_code == 415 and response.json()["error"]["code"] == "unsupported_file"
    assert api.client.get("/v1/documents", headers=api.headers("globex")).json()["total"] == 0


def test_a_corrupt_file_is_reported_and_not_recorded(api: Api) -> None:
    response = api.client.post("/v1/documents", files=[("files", ("broken.pdf", b"%PDF-1.4 not really")),
                                                       ("files", ("zeta.md", DOC))], headers=api.headers("globex"))
    assert response.status_code == 200
    results = {r["source"]: r for r in response.json()["results"]}
    assert results["broken.pdf"]["status"] == "failed" and results["broken.pdf"]["reason"]
    assert results["zeta.md"]["status"] == "new"
    listed = api.client.get("/v1/documents", headers=api.headers("globex")).json()
    assert [item["source"] for item in listed["items"]] == ["zeta.md"]
    assert not (api.state.settings.data_dir / "uploads" / "globex" / "broken.pdf").exists()


def test_upload_needs_files(api: Api) -> None:
    response = api.client.post("/v1/documents", data={"product": "x"}, headers=api.headers("globex"))
    assert response.status_code == 422
