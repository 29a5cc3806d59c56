"""Elasticsearch: the exact requests the project sends, checked through the client's transport,
and the real server whenever SUPPORTBOT_TEST_ELASTICSEARCH_URL is set."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from core.settings import Settings
from knowledge.document_store import build_document_store
from knowledge.retrieval import KnowledgeSearch, metadata_filters


class _Recorder(BaseHTTPRequestHandler):
    requests: ClassVar[list[tuple[str, str, dict]]] = []

    def _reply(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_HEAD(self) -> None:  # index exists
        self.send_response(200)
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.end_headers()

    def do_GET(self) -> None:
        self._reply({"version": {"number": "8.15.0"}, "tagline": "You Know, for Search"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        type(self).requests.append(("POST", self.path, body))
        self._reply({"took": 1, "timed_out": False, "hits": {"total": {"value": 0}, "hits": []}})

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def recording_server():
    _Recorder.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.slow
def test_hybrid_search_sends_filtered_bm25_and_knn_queries(recording_server: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, store={"backend": "elasticsearch", "elasticsearch_url": recording_server,
                                                  "elasticsearch_index": "manuals"})
    search = KnowledgeSearch(settings, build_document_store(settings))
    search.warm_up()
    assert search.search("factory reset", filters=metadata_filters(tenant="acme")) == []
    bodies = {("knn" if "knn" in body else "bm25"): body for _, path, body in _Recorder.requests
              if path.startswith("/manuals/_search")}
    bm25 = bodies["bm25"]["query"]["bool"]
    assert bm25["must"][0]["multi_match"]["query"] == "factory reset"
    print(json.dumps(bm25["filter"]))
    assert "acme" in json.dumps(bm25["filter"])
    knn = bodies["knn"]["knn"]
    assert knn["field"] == "embedding" and len(knn["query_vector"]) == 384 and knn["k"] == 50
    assert "acme" in json.dumps(knn["filter"])


ES_URL = os.environ.get("SUPPORTBOT_TEST_ELASTICSEARCH_URL")


@pytest.mark.integration
@pytest.mark.skipif(not ES_URL, reason="SUPPORTBOT_TEST_ELASTICSEARCH_URL is not set: no Elasticsearch server")
def test_real_elasticsearch_ingest_and_search(tmp_path: Path, samples_copy: Path) -> None:
    from knowledge.indexing import Indexer, SourceMeta

    settings = Settings(data_dir=tmp_path, store={"backend": "elasticsearch", "elasticsearch_url": ES_URL,
                                                  "elasticsearch_index": f"supportbot-test-{os.getpid()}"})
    store = build_document_store(settings)
    try:
        summary = Indexer(settings, store).ingest([str(samples_copy)], SourceMeta(tenant="acme"))
        assert summary.new == 6
        store.client.indices.refresh(index=settings.store.elasticsearch_index)  # type: ignore[attr-defined]
        hits = KnowledgeSearch(settings, store).search("factory reset", filters=metadata_filters(tenant="acme"))
        assert hits and hits[0].meta["heading_path"][-1] == "Factory reset"
    finally:
        store.client.indices.delete(index=settings.store.elasticsearch_index)  # type: ignore[attr-defined]
