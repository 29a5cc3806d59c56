"""Files ingested with ``supportbot ingest`` are listed by ``GET /v1/documents`` like uploads:
recorded with their file name, product and chunk count, dropped when pruned, deletable by name."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import build_parser
from core.db.engine import open_session
from core.db.queries.api_keys import create_api_key
from core.settings import GeneratorSettings, Settings
from tests.conftest import SAMPLES


def _ingest(settings: Settings, *argv: str) -> int:
    args = build_parser().parse_args(["ingest", *argv, "--json"])
    return int(args.handler(args, settings))


def test_cli_ingested_files_are_listed_pruned_and_deletable(tmp_path: Path) -> None:
    manuals = tmp_path / "manuals"
    shutil.copytree(SAMPLES / "nimbus-r7", manuals)
    settings = Settings(data_dir=tmp_path / "data", generator=GeneratorSettings(backend="extractive"))
    # The tenant has no record yet: the ingest creates it, so its key can list the documents.
    assert _ingest(settings, str(manuals), "--tenant", "acme", "--product", "nimbus-r7") == 0

    app = create_app(settings)
    with TestClient(app) as client:
        with open_session(app.state.supportbot.engine) as session:
            key = create_api_key(session, tenant_id="acme")[1]
        headers = {"Authorization": f"Bearer {key}"}

        def listed() -> dict[str, dict[str, object]]:
            response = client.get("/v1/documents", headers=headers)
            assert response.status_code == 200, response.text
            return {item["source"]: item for item in response.json()["items"]}

        documents = listed()
        assert set(documents) == {"troubleshooting.html", "user-guide.md", "warranty.txt"}
        guide = documents["user-guide.md"]
        assert guide["product"] == "nimbus-r7" and int(str(guide["chunk_count"])) > 0
        assert guide["content_hash"] == hashlib.sha256((manuals / "user-guide.md").read_bytes()).hexdigest()

        (manuals / "warranty.txt").unlink()
        assert _ingest(settings, str(manuals), "--tenant", "acme", "--product", "nimbus-r7", "--prune") == 0
        assert set(listed()) == {"troubleshooting.html", "user-guide.md"}

        assert client.delete("/v1/documents/user-guide.md", headers=headers).status_code == 204
        assert set(listed()) == {"troubleshooting.html"}
        assert (manuals / "user-guide.md").is_file()  # the operator's own file is not touched
        hits = client.post("/v1/search", headers=headers, json={"query": "factory reset", "top_k": 10}).json()
        assert all(hit["source"] != "user-guide.md" for hit in hits["results"])
