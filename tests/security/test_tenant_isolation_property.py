"""Tenant isolation as a property: for random sequences of uploads, deletions, searches, chats and
feedback by random tenants, no tenant ever sees another's documents (search hits, chat citations),
conversations or turns, including right after a document is deleted, and including when two
tenants upload the same file name or byte-identical files.

Each document carries an owner token (``OWNER-<tenant>-<topic>``) so a leak is caught by content,
not only by file name. Examples are few: every upload is embedded with the real MiniLM on the CPU.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.db.engine import open_session
from core.db.queries.tenants import create_tenant
from tests.api.conftest import Api, MakeApi, indexed_template, make_api  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow

TOPICS = ["Zorvex heat pump", "Quillon espresso grinder", "Marrowfin bilge pump"]
SHARED = "Kestrel vendor handbook"  # byte-identical in every tenant
_RUNS = itertools.count()


def document(tenant: str, topic: int) -> tuple[str, bytes]:
    if topic == len(TOPICS):
        return "vendor.md", (f"# {SHARED}\n\n## Cleaning\n\nClean the Kestrel filter with warm water every "
                             "month, then dry the Kestrel filter for an hour.\n").encode()
    name = TOPICS[topic]
    return f"topic-{topic}.md", (f"# {name} manual\n\n## Setup\n\nTo set up the {name}, hold the setup key "
                                 f"for {topic + 4} seconds until the light turns green. Owner code "
                                 f"OWNER-{tenant}-{topic}.\n").encode()


def question(topic: int) -> str:
    return "How do I clean the Kestrel filter?" if topic == len(TOPICS) else f"How do I set up the {TOPICS[topic]}?"


Step = tuple[str, int, int]  # (action, tenant index, topic index)
steps = st.lists(st.tuples(st.sampled_from(["upload", "upload", "delete", "search", "chat"]),
                           st.integers(0, 2), st.integers(0, len(TOPICS))), min_size=3, max_size=8)


@dataclass
class World:
    """What each tenant should see: its live uploads (name -> owner token or None for the shared
    file), its conversations and turns."""

    api: Api
    tenants: list[str]
    live: dict[str, dict[str, str | None]] = field(default_factory=dict)
    turns: dict[str, set[str]] = field(default_factory=dict)
    conversations: dict[str, set[str]] = field(default_factory=dict)

    def others_tokens(self, tenant: str) -> list[str]:
        return [f"OWNER-{other}-{topic}" for other in self.tenants if other != tenant for topic in range(len(TOPICS))]

    def check_hits(self, tenant: str, hits: list[dict[str, object]]) -> None:
        """Every hit is one of the tenant's live files and holds no other tenant's token."""
        for hit in hits:
            source, content = str(hit.get("source")), str(hit.get("content") or hit.get("snippet") or "")
            assert not any(token in content for token in self.others_tokens(tenant)), (tenant, hit)
            if source.startswith(("topic-", "vendor")):
                assert source in self.live[tenant], (tenant, source, self.live[tenant])
                token = self.live[tenant][source]
                assert token is None or token in content or not content, (tenant, hit)


def run(world: World, step: Step) -> None:
    action, who, topic = step
    tenant = world.tenants[who]
    api, headers = world.api, world.api.headers(tenant)
    name, data = document(tenant, topic)
    if action == "upload":
        response = api.client.post("/v1/documents", files={"files": (name, data, "text/markdown")}, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["results"][0]["status"] in ("new", "unchanged"), response.text
        world.live[tenant][name] = None if name == "vendor.md" else f"OWNER-{tenant}-{topic}"
    elif action == "delete":
        response = api.client.delete(f"/v1/documents/{name}", headers=headers)
        assert response.status_code == (204 if name in world.live[tenant] else 404), response.text
        world.live[tenant].pop(name, None)
    elif action == "search":
        response = api.client.post("/v1/search", json={"query": question(topic), "top_k": 20}, headers=headers)
        assert response.status_code == 200, response.text
        world.check_hits(tenant, response.json()["results"])
    else:
        response = api.client.post("/v1/chat", json={"message": question(topic), "channel": "web"}, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        # a snippet quotes part of a chunk, perhaps not the part with the owner token: each citation must
        # be one of the chunks this tenant's own search returns, whose whole content is checked
        own = {hit["chunk_id"]: hit for hit in api.client.post(
            "/v1/search", json={"query": question(topic), "top_k": 20}, headers=headers).json()["results"]}
        world.check_hits(tenant, list(own.values()))
        for citation in body["citations"]:
            assert citation["chunk_id"] in own, (tenant, citation, list(own))
            world.check_hits(tenant, [{**citation, "content": own[citation["chunk_id"]]["content"]}])
        assert not any(token in body["answer"] for token in world.others_tokens(tenant)), body["answer"]
        world.turns[tenant].add(body["turn_id"])
        world.conversations[tenant].add(body["conversation_id"])


def check_everything(world: World) -> None:
    """After the steps: every tenant searches every topic; conversations, turns and feedback of one
    tenant are invisible (404) to the others; documents are listed per tenant."""
    api = world.api
    for tenant in world.tenants:
        headers = api.headers(tenant)
        for topic in range(len(TOPICS) + 1):
            hits = api.client.post("/v1/search", json={"query": question(topic), "top_k": 20},
                                   headers=headers).json()["results"]
            world.check_hits(tenant, hits)
            name = document(tenant, topic)[0]
            if name in world.live[tenant]:  # not vacuous: the tenant does find its own document
                assert name in {hit["source"] for hit in hits}, (tenant, name, hits)
        listed = api.client.get("/v1/documents", params={"limit": 100}, headers=headers).json()
        assert {item["source"] for item in listed["items"]} == set(world.live[tenant])
        conversations = api.client.get("/v1/conversations", params={"limit": 100}, headers=headers).json()
        assert {item["id"] for item in conversations["items"]} == world.conversations[tenant]
        for other in world.tenants:
            if other == tenant:
                continue
            for conversation in world.conversations[other]:
                assert api.client.get(f"/v1/conversations/{conversation}", headers=headers).status_code == 404
            for turn in world.turns[other]:
                feedback = api.client.post("/v1/feedback", json={"turn_id": turn, "rating": "down"}, headers=headers)
                assert feedback.status_code == 404, feedback.text
        for turn in world.turns[tenant]:
            feedback = api.client.post("/v1/feedback", json={"turn_id": turn, "rating": "up"}, headers=headers)
            assert feedback.status_code == 200, feedback.text


@pytest.mark.timeout(900)
def test_no_tenant_ever_sees_another_tenants_data(make_api: MakeApi) -> None:  # noqa: F811
    api = make_api(api={"rate_limit_per_minute": 1_000_000, "rate_limit_burst": 1_000_000})

    @given(sequence=steps)
    @settings(max_examples=6, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    def isolated(sequence: list[Step]) -> None:
        # Fresh tenants per example: what earlier examples left in the index is other tenants' data.
        run_id = next(_RUNS)
        tenants = [f"t{run_id}x{n}" for n in range(3)]
        with open_session(api.state.engine) as session:
            for tenant in tenants:
                create_tenant(session, tenant_id=tenant)
        for tenant in tenants:
            api.keys[tenant] = api.new_key(tenant)
        world = World(api=api, tenants=tenants, live={t: {} for t in tenants}, turns={t: set() for t in tenants},
                      conversations={t: set() for t in tenants})
        for step in sequence:
            run(world, step)
            if step[0] == "delete":  # right after a deletion, the deleting tenant's view is checked at once
                tenant = tenants[step[1]]
                hits = api.client.post("/v1/search", json={"query": question(step[2]), "top_k": 20},
                                       headers=api.headers(tenant)).json()["results"]
                world.check_hits(tenant, hits)
        check_everything(world)

    isolated()
