"""Tenant isolation: the tenant comes from the key; another tenant's documents never appear in
search results or chat citations, and its conversations and turns are invisible (404)."""

from __future__ import annotations

import pytest

from tests.api.conftest import RESET_QUESTION, Api

pytestmark = pytest.mark.slow

GLOBEX_DOC = b"""# Globex Hyperdrive Manual

## Calibrating the flux capacitor

To calibrate the flux capacitor of the Globex Hyperdrive, turn the quantum dial to position 88 and
hold the plutonium lever for 12 seconds until the chamber glows blue.
"""
GLOBEX_QUESTION = "How do I calibrate the flux capacitor of the Globex Hyperdrive?"


def _upload_globex(api: Api) -> None:
    response = api.client.post("/v1/documents", files={"files": ("hyperdrive.md", GLOBEX_DOC, "text/markdown")},
                               headers=api.headers("globex"))
    assert response.status_code == 200 and response.json()["results"][0]["status"] == "new", response.text


def test_search_only_sees_the_callers_documents(api: Api) -> None:
    _upload_globex(api)
    acme_hits = api.client.post("/v1/search", json={"query": GLOBEX_QUESTION, "top_k": 20},
                                headers=api.headers("acme")).json()["results"]
    assert acme_hits and all(hit["source"] != "hyperdrive.md" for hit in acme_hits)
    globex_hits = api.client.post("/v1/search", json={"query": RESET_QUESTION, "top_k": 20},
                                  headers=api.headers("globex")).json()["results"]
    assert [hit["source"] for hit in globex_hits] == ["hyperdrive.md"]


def test_chat_citations_only_come_from_the_callers_documents(api: Api) -> None:
    _upload_globex(api)
    globex = api.client.post("/v1/chat", json={"message": GLOBEX_QUESTION, "channel": "web"},
                             headers=api.headers("globex")).json()
    assert [c["source"] for c in globex["citations"]] == ["hyperdrive.md"]
    acme = api.client.post("/v1/chat", json={"message": GLOBEX_QUESTION, "channel": "web"},
                           headers=api.headers("acme")).json()
    assert all(c["source"] != "hyperdrive.md" for c in acme["citations"])
    reset = api.client.post("/v1/chat", json={"message": RESET_QUESTION, "channel": "web"},
                            headers=api.headers("globex")).json()
    assert reset["abstained"] is True and reset["citations"] == []


def test_conversations_turns_and_feedback_are_the_tenants_own(api: Api) -> None:
    answer = api.client.post("/v1/chat", json={"message": RESET_QUESTION, "channel": "web"},
                             headers=api.headers("acme")).json()
    assert api.client.get("/v1/conversations", headers=api.headers("globex")).json()["total"] == 0
    detail = api.client.get(f"/v1/conversations/{answer['conversation_id']}", headers=api.headers("globex"))
    assert detail.status_code == 404
    feedback = api.client.post("/v1/feedback", json={"turn_id": answer["turn_id"], "rating": "down"},
                               headers=api.headers("globex"))
    assert feedback.status_code == 404
    hijack = api.client.post("/v1/chat", json={"message": "and then?", "channel": "web",
                                               "conversation_id": answer["conversation_id"]},
                             headers=api.headers("globex"))
    assert hijack.status_code == 404
    own = api.client.get(f"/v1/conversations/{answer['conversation_id']}", headers=api.headers("acme")).json()
    assert len(own["turns"]) == 1 and own["turns"][0]["feedback"] is None


def test_documents_are_listed_and_deleted_per_tenant(api: Api) -> None:
    _upload_globex(api)
    assert api.client.get("/v1/documents", headers=api.headers("acme")).json()["total"] == 0
    assert api.client.delete("/v1/documents/hyperdrive.md", headers=api.headers("acme")).status_code == 404
    assert api.client.get("/v1/documents", headers=api.headers("globex")).json()["total"] == 1
