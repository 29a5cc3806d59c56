"""The agent-assist API (``POST /v1/assist``, ``POST /v1/assist/{turn_id}/sent``) through the test
client, the similar-conversation ranking, and the ``/assist`` page in headless Chromium."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import select

from bot.similar_conversations import PastTurn, rank_similar
from core.db.engine import open_session
from core.db.tables import Feedback, Turn
from tests.api.conftest import RESET_QUESTION, Api
from tests.api.live_server import LiveApi, serve_page

TICKET = {"subject": "Factory reset", "body": "How do I factory reset the Nimbus R7 router?"}


def _feedback(api: Api, turn_id: str) -> Feedback | None:
    with open_session(api.state.engine) as session:
        return session.exec(select(Feedback).where(Feedback.turn_id == uuid.UUID(turn_id))).first()


def test_rank_similar_prefers_shared_terms() -> None:
    past = [PastTurn("c1", "t1", "How do I clean the Lumen Brew 3?", "Descale it monthly."),
            PastTurn("c2", "t2", "Router will not reset", "Hold the reset button for ten seconds."),
            PastTurn("c3", "t3", "Nothing related", "At all.")]
    ranked = rank_similar("How do I reset my router?", past)
    assert [hit.turn.turn_id for hit in ranked] == ["t2"]
    assert ranked[0].score == 1.0
    assert rank_similar("the of and", past) == []


@pytest.mark.slow
def test_assist_drafts_a_reply_with_citations_sources_and_similar_answers(api: Api) -> None:
    earlier = api.client.post("/v1/chat", headers=api.headers(), json={"message": RESET_QUESTION, "channel": "web"})
    api.client.post("/v1/feedback", headers=api.headers(), json={"turn_id": earlier.json()["turn_id"], "rating": "up"})
    unrated = api.client.post("/v1/chat", headers=api.headers(), json={"message": RESET_QUESTION, "channel": "web"})

    response = api.client.post("/v1/assist", headers=api.headers(), json=TICKET)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["draft"] and body["citations"] and not body["abstained"]
    assert 1 <= len(body["sources"]) <= 5 and all(hit["content"] for hit in body["sources"])
    assert [s["turn_id"] for s in body["similar"]] == [earlier.json()["turn_id"]]
    assert body["similar"][0]["turn_id"] != unrated.json()["turn_id"]
    conversation = api.client.get(f"/v1/conversations/{body['conversation_id']}", headers=api.headers()).json()
    assert conversation["channel"] == "assist" and conversation["turns"][0]["id"] == body["turn_id"]

    # Another tenant sees neither the documents nor the past conversations.
    other = api.client.post("/v1/assist", headers=api.headers("globex"), json=TICKET).json()
    assert other["abstained"] and other["sources"] == [] and other["similar"] == []


@pytest.mark.slow
def test_assist_takes_the_ticket_history(api: Api) -> None:
    history = [{"role": "user", "content": "My Nimbus R7 router keeps dropping wifi."},
               {"role": "assistant", "content": "Have you tried restarting it?"}]
    response = api.client.post("/v1/assist", headers=api.headers(),
                               json={"subject": "Still broken", "body": "How do I factory reset it?",
                                     "history": history})
    assert response.status_code == 200, response.text
    with open_session(api.state.engine) as session:
        turn = session.get(Turn, uuid.UUID(response.json()["turn_id"]))
        assert turn is not None and "r7" in turn.standalone_query.lower()


@pytest.mark.slow
def test_sent_reply_is_stored_as_the_corrected_answer(api: Api) -> None:
    draft = api.client.post("/v1/assist", headers=api.headers(), json=TICKET).json()
    turn_id = draft["turn_id"]
    unchanged = api.client.post(f"/v1/assist/{turn_id}/sent", headers=api.headers(),
                                json={"final_text": "  " + draft["draft"] + "\n"})
    assert unchanged.status_code == 200 and unchanged.json()["rating"] == "up"

    second = api.client.post("/v1/assist", headers=api.headers(), json=TICKET).json()
    edited = "Hold the reset button for ten seconds, then wait for the lights. [1]"
    sent = api.client.post(f"/v1/assist/{second['turn_id']}/sent", headers=api.headers(), json={"final_text": edited})
    assert sent.status_code == 200 and sent.json()["corrected_answer"] == edited
    row = _feedback(api, second["turn_id"])
    assert row is not None and (row.rating, row.corrected_answer, row.tenant_id) == ("down", edited, "acme")

    # An earlier rating is kept; the correction replaces the earlier one.
    api.client.post("/v1/feedback", headers=api.headers(), json={"turn_id": turn_id, "rating": "down",
                                                                   "resolved": True})
    api.client.post(f"/v1/assist/{turn_id}/sent", headers=api.headers(), json={"final_text": edited})
    row = _feedback(api, turn_id)
    assert row is not None and (row.rating, row.resolved, row.corrected_answer) == ("down", True, edited)


@pytest.mark.slow
def test_sent_is_scoped_by_tenant_and_validated(api: Api) -> None:
    turn_id = api.client.post("/v1/assist", headers=api.headers(), json=TICKET).json()["turn_id"]
    assert api.client.post(f"/v1/assist/{turn_id}/sent", headers=api.headers("globex"),
                           json={"final_text": "hi"}).status_code == 404
    assert _feedback(api, turn_id) is None
    assert api.client.post(f"/v1/assist/{uuid.uuid4()}/sent", headers=api.headers(),
                           json={"final_text": "hi"}).status_code == 404
    assert api.client.post(f"/v1/assist/{turn_id}/sent", headers=api.headers(),
                           json={"final_text": ""}).status_code == 422
    assert api.client.post("/v1/assist", headers=api.headers(), json={**TICKET, "tenant": "globex"}).status_code == 422
    assert api.client.post("/v1/assist", headers=api.headers(),
                           json={**TICKET, "body": "x" * 3000}).status_code == 422
    assert api.client.post("/v1/assist", json=TICKET).status_code == 401


# --- the /assist page in Chromium ------------------------------------------------------------------

@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1024, "height": 900})
    context.set_default_timeout(30_000)
    yield context.new_page()
    context.close()


@pytest.mark.slow
def test_assist_page_drafts_edits_and_sends(live_api: LiveApi, page: Any) -> None:
    page.goto(f"{live_api.url}/assist#key={live_api.keys['acme']}")
    assert live_api.keys["acme"] not in page.url  # the key is taken out of the address bar
    page.get_by_label("Subject").fill(TICKET["subject"])
    page.get_by_label("Customer message").fill(TICKET["body"])
    page.get_by_role("button", name="Draft a reply").click()
    page.get_by_text("Draft ready. Edit it, then send.").wait_for()
    draft = page.get_by_label("Edit before sending")
    assert "reset" in draft.input_value().lower()
    assert page.evaluate("document.activeElement.id") == "draft"
    citations = page.locator("#citations li")
    assert citations.count() >= 1
    citations.first.locator("summary").click()
    assert citations.first.locator("blockquote").text_content()
    assert page.locator("#sources li").count() >= 1

    edited = draft.input_value() + "\nLet us know if that helps."
    draft.fill(edited)
    with page.expect_response(lambda r: r.url.endswith("/sent")) as sent:
        page.get_by_role("button", name="Send reply").click()
    turn_id = sent.value.url.split("/")[-2]
    page.get_by_text("Reply sent and saved as the corrected answer.").wait_for()
    with open_session(live_api.state.engine) as session:
        row = session.exec(select(Feedback).where(Feedback.turn_id == uuid.UUID(turn_id))).one()
        assert (row.tenant_id, row.corrected_answer) == ("acme", edited.strip())


@pytest.mark.slow
def test_assist_page_asks_for_a_key_and_shows_errors(live_api: LiveApi, page: Any) -> None:
    page.goto(f"{live_api.url}/assist")
    key = page.get_by_label("API key")
    assert key.is_visible() and page.locator("#ticket-form").is_hidden()
    key.fill("sb_not-a-key")
    page.get_by_role("button", name="Use key").click()
    page.get_by_label("Subject").fill("Hello")
    page.get_by_label("Customer message").fill("Anyone there?")
    page.get_by_role("button", name="Draft a reply").click()
    page.get_by_text("the API key is unknown or revoked").wait_for()
    assert page.locator("#result").is_hidden()


@pytest.mark.slow
def test_assist_page_in_a_helpdesk_iframe_posts_the_reply_to_its_parent(live_api: LiveApi, page: Any) -> None:
    def helpdesk(_path: str) -> str:
        src = f"{live_api.url}/assist#key={live_api.keys['acme']}&parent={origin[0]}"
        return ('<!doctype html><html><head><meta charset="utf-8"><title>Helpdesk</title></head><body>'
                "<script>window.addEventListener('message', e => { window.__reply = {origin: e.origin, data: e.data}; });"
                f'</script><iframe title="assist" src="{src}" width="900" height="800"></iframe></body></html>')

    origin: list[str] = []
    with serve_page(helpdesk) as url:
        origin.append(url)
        page.goto(url)
        panel = page.frame_locator("iframe")
        panel.get_by_label("Subject").fill(TICKET["subject"])
        panel.get_by_label("Customer message").fill(TICKET["body"])
        panel.get_by_role("button", name="Draft a reply").click()
        panel.get_by_text("Draft ready. Edit it, then send.").wait_for()
        panel.get_by_label("Edit before sending").fill("Hold the reset button for ten seconds.")
        panel.get_by_role("button", name="Send reply").click()
        page.wait_for_function("window.__reply !== undefined")
        reply = page.evaluate("window.__reply")
    assert reply == {"origin": live_api.url, "data": {"type": "supportbot:reply",
                                                      "text": "Hold the reset button for ten seconds."}}
