"""The web chat widget: its assets, CORS and the handoff route (through the test client), then the
widget itself in headless Chromium, embedded by a page of another origin with a public key (the
only kind meant to sit in a page's source) and talking to the real API served on loopback."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import select

from core.db.engine import open_session
from core.db.tables import Conversation, Feedback, Turn
from tests.api.conftest import HOSTILE_QUESTION, RESET_QUESTION, Api
from tests.api.live_server import LiveApi, serve_page

WIDGET = "[data-supportbot-widget]"


# --- API side (test client) ------------------------------------------------------------------------

def test_widget_assets_are_served_without_a_key(api: Api) -> None:
    script = api.client.get("/widget.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "innerHTML" not in script.text and "insertAdjacentHTML" not in script.text
    assert api.client.get("/widget.css").headers["content-type"].startswith("text/css")
    page = api.client.get("/assist")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert "innerHTML" not in api.client.get("/assist.js").text


def test_cors_lets_another_origin_call_the_api(api: Api) -> None:
    preflight = api.client.options("/v1/chat", headers={
        "Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    refused = api.client.get("/v1/conversations", headers={"Origin": "https://shop.example"})
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == "*"


def test_cors_origins_are_configurable(make_api: Any) -> None:
    api = make_api(api={"cors_origins": ["https://shop.example"]})
    allowed = api.client.get("/healthz", headers={"Origin": "https://shop.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
    other = api.client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_handoff_marks_the_tenants_conversation(api: Api) -> None:
    chat = api.client.post("/v1/chat", headers=api.headers(), json={"message": RESET_QUESTION, "channel": "web"})
    conversation_id = chat.json()["conversation_id"]
    assert api.client.post("/v1/handoff", headers=api.headers("globex"),
                           json={"conversation_id": conversation_id}).status_code == 404
    handed = api.client.post("/v1/handoff", headers=api.headers(), json={"conversation_id": conversation_id})
    assert handed.status_code == 200 and handed.json() == {"conversation_id": conversation_id, "handoff": True}
    assert api.client.get(f"/v1/conversations/{conversation_id}", headers=api.headers()).json()["handoff"] is True
    fresh = api.client.post("/v1/handoff", headers=api.headers("globex"), json={})
    assert fresh.status_code == 200
    listed = api.client.get("/v1/conversations", headers=api.headers("globex"), params={"handoff": True}).json()
    assert [item["id"] for item in listed["items"]] == [fresh.json()["conversation_id"]]
    assert api.client.post("/v1/handoff", headers=api.headers(), json={"tenant_id": "globex"}).status_code == 422


# --- the widget in Chromium ------------------------------------------------------------------------

def _embedding_page(live_api: LiveApi, key: str) -> str:
    tag = (f'<script src="{live_api.url}/widget.js" data-api-key="{key}" '
           'data-color="#aa3300" data-title="Acme support" defer></script>')
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>Shop</title>{tag}</head>'
            f"<body><h1>Acme shop</h1></body></html>")


@pytest.fixture
def host(live_api: LiveApi) -> Iterator[str]:
    """A page on another origin that embeds the widget with one script tag and a public key."""
    page = _embedding_page(live_api, live_api.keys["acme-public"])
    with serve_page(lambda _path: page) as url:
        yield url


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(30_000)
    tab = context.new_page()
    tab.requests = []  # every URL the page asked for
    tab.on("request", lambda request: tab.requests.append(request.url))
    tab.warnings = []  # what the page logged with console.warn
    tab.on("console", lambda message: tab.warnings.append(message.text) if message.type == "warning" else None)
    yield tab
    context.close()


def _ask(page: Any, question: str) -> Any:
    """Type a question, send it, and return the finished answer element."""
    answers = page.locator(f'{WIDGET} .sbw-bot[aria-busy="false"]')
    before = answers.count()
    page.locator("#sbw-input").fill(question)
    page.locator(".sbw-send").click()
    page.wait_for_function(f"document.querySelectorAll('{WIDGET} .sbw-bot[aria-busy=\"false\"]').length > {before}")
    return answers.nth(before)


def _watch_answer_text(page: Any) -> None:
    """Record every text an answer bubble showed. Mutation records keep each replaced text node, so
    streamed text is seen even when the tokens and the final answer arrive in one network chunk."""
    page.evaluate("""() => {
        window.__shown = [];
        new MutationObserver(records => {
            for (const record of records) {
                if (!record.target.matches || !record.target.matches('.sbw-bot .sbw-text')) continue;
                for (const node of record.addedNodes) window.__shown.push(node.textContent);
            }
        }).observe(document.querySelector('.sbw-log'), {subtree: true, childList: true});
    }""")


def _turn(live_api: LiveApi, turn_id: str) -> Turn:
    with open_session(live_api.state.engine) as session:
        turn = session.get(Turn, uuid.UUID(turn_id))
        assert turn is not None
        return turn


@pytest.mark.slow
def test_ask_see_streamed_answer_with_citations_give_feedback_and_reload(live_api: LiveApi, host: str,
                                                                         page: Any) -> None:
    page.goto(host)
    page.get_by_role("button", name="Chat with Acme support").click()
    _watch_answer_text(page)
    with page.expect_response(lambda r: r.url.endswith("/v1/chat")) as chat_response:
        answer = _ask(page, RESET_QUESTION)
    assert chat_response.value.headers["content-type"].startswith("text/event-stream")
    assert chat_response.value.headers["access-control-allow-origin"] == "*"
    final_text = answer.locator(".sbw-text").text_content()
    shown = page.evaluate("window.__shown")
    assert shown[-1] == final_text
    assert len(shown) >= 2 and all(shown[:-1]), "no token text was shown before the final answer"
    assert "reset" in final_text.lower()

    # Sample manuals are files, not URLs: a citation shows its passage on demand.
    citations = answer.locator(".sbw-citation")
    assert citations.count() >= 1
    first = citations.first
    snippet = first.locator(".sbw-snippet")
    assert not snippet.is_visible()
    first.locator("summary").click()
    assert snippet.is_visible() and snippet.text_content()
    turn_id = answer.get_attribute("data-turn-id")
    stored = _turn(live_api, turn_id)
    assert stored.citations[0]["snippet"] == snippet.text_content()

    answer.get_by_role("button", name="Helpful", exact=True).click()
    page.get_by_text("Thanks for your feedback.").wait_for()
    assert answer.get_by_role("button", name="Helpful", exact=True).get_attribute("aria-pressed") == "true"
    with open_session(live_api.state.engine) as session:
        row = session.exec(select(Feedback).where(Feedback.turn_id == uuid.UUID(turn_id))).one()
        assert (row.tenant_id, row.rating) == ("acme", "up")

    page.reload()
    restored = page.locator(f"{WIDGET} .sbw-bot[data-turn-id='{turn_id}']")
    restored.wait_for(state="attached")
    page.get_by_role("button", name="Chat with Acme support").click()
    assert page.locator(f"{WIDGET} .sbw-user .sbw-text").first.text_content() == RESET_QUESTION
    assert restored.locator(".sbw-text").text_content() == final_text
    assert restored.locator(".sbw-citation").count() == citations.count()
    assert restored.get_by_role("button", name="Helpful", exact=True).get_attribute("aria-pressed") == "true"

    follow_up = _ask(page, "and how long does it take?")
    assert _turn(live_api, follow_up.get_attribute("data-turn-id")).conversation_id == stored.conversation_id
    # All of it on the public key: chat, feedback and the restore after the reload.
    assert live_api.keys["acme-public"].startswith("sbp_")
    assert not [text for text in page.warnings if "not a public key" in text]


@pytest.mark.slow
def test_the_page_source_key_cannot_read_other_conversations(live_api: LiveApi, host: str, page: Any) -> None:
    """What a visitor could do with the key from the page source: no more than the widget does."""
    page.goto(host)
    key = page.locator("script[data-api-key]").get_attribute("data-api-key")
    assert key == live_api.keys["acme-public"]
    statuses = page.evaluate("""async ([api, key]) => {
        const call = async (path, init) => (await fetch(api + path, {
            ...init, headers: {"Authorization": "Bearer " + key, "Content-Type": "application/json"}})).status;
        return [await call("/v1/conversations"),
                await call("/v1/search", {method: "POST", body: JSON.stringify({query: "reset"})}),
                await call("/v1/documents"),
                await call("/v1/chat", {method: "POST", body: JSON.stringify({message: "hi", channel: "api"})})];
    }""", [live_api.url, key])
    assert statuses == [403, 403, 403, 403]


@pytest.mark.slow
def test_a_full_key_in_the_page_is_warned_about(live_api: LiveApi, page: Any) -> None:
    with serve_page(lambda _path: _embedding_page(live_api, live_api.keys["acme"])) as url:
        page.goto(url)
        page.get_by_role("button", name="Chat with Acme support").wait_for()
    assert any("data-api-key is not a public key" in text for text in page.warnings), page.warnings


@pytest.mark.slow
def test_keyboard_only(host: str, page: Any) -> None:
    page.goto(host)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "sbw-launcher"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "sbw-input"
    page.keyboard.type(RESET_QUESTION)
    page.keyboard.press("Enter")
    page.locator(f'{WIDGET} .sbw-bot[aria-busy="false"] .sbw-citation').first.wait_for()
    assert page.evaluate("document.activeElement.id") == "sbw-input"
    assert page.locator(".sbw-log").get_attribute("aria-live") == "polite"
    # Back from the input: the answer's feedback buttons, operable with the keyboard.
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Not helpful"
    page.keyboard.press("Enter")
    page.get_by_text("Thanks for your feedback.").wait_for()
    page.keyboard.press("Escape")
    assert page.locator("#sbw-panel").is_hidden()
    assert page.evaluate("document.activeElement.className") == "sbw-launcher"


@pytest.mark.slow
def test_phone_viewport_has_no_horizontal_overflow(chromium: Any, host: str) -> None:
    context = chromium.new_context(viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(host)
        page.get_by_role("button", name="Chat with Acme support").click()
        _ask(page, RESET_QUESTION + " " + "x" * 300)
        width = page.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")
        assert width <= 375
        box = page.locator("#sbw-panel").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 375
        assert page.locator("#sbw-input").is_visible() and page.locator(".sbw-send").is_visible()
        log_overflow = page.evaluate("(() => { const l = document.querySelector('.sbw-log');"
                                     " return l.scrollWidth - l.clientWidth; })()")
        assert log_overflow <= 0
    finally:
        context.close()


@pytest.mark.slow
def test_hostile_content_is_shown_as_text_and_never_runs_or_loads(live_api: LiveApi, host: str, page: Any) -> None:
    page.goto(host)
    page.get_by_role("button", name="Chat with Acme support").click()
    answer = _ask(page, HOSTILE_QUESTION)
    shown = answer.text_content() or ""
    for details in answer.locator("details").all():
        details.locator("summary").click()
    shown += " ".join(answer.locator(".sbw-snippet").all_text_contents())
    assert "<script>" in shown or "<img" in shown  # the markup arrived, and is shown as text
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator(f"{WIDGET} script, {WIDGET} img, {WIDGET} iframe, {WIDGET} [onerror]").count() == 0
    assert page.locator(f"{WIDGET} a[href^='javascript:'], {WIDGET} a[href^='data:']").count() == 0
    assert not [url for url in page.requests if "evil.example.test" in url or url.endswith("/x")]

    # Stored citations with hostile URLs, restored after a reload: only http(s) becomes a link.
    turn_id = uuid.UUID(answer.get_attribute("data-turn-id"))
    with open_session(live_api.state.engine) as session:
        turn = session.get(Turn, turn_id)
        assert turn is not None
        base = dict(turn.citations[0])
        turn.citations = [{**base, "number": 1, "url": "javascript:window.__pwned=1", "title": "js"},
                          {**base, "number": 2, "url": "data:text/html,<script>window.__pwned=1</script>",
                           "title": "data"},
                          {**base, "number": 3, "url": "https://docs.example.test/manual.pdf", "page": 3,
                           "title": "<img src=x onerror=window.__pwned=1>"}]
        session.add(turn)
        session.commit()
    page.context.route("https://docs.example.test/**",
                       lambda route: route.fulfill(status=200, content_type="text/plain", body="the manual"))
    page.reload()
    restored = page.locator(f"{WIDGET} .sbw-bot[data-turn-id='{turn_id}']")
    restored.wait_for(state="attached")
    page.get_by_role("button", name="Chat with Acme support").click()
    links = restored.locator(".sbw-citation a")
    assert links.count() == 1
    assert links.first.get_attribute("href") == "https://docs.example.test/manual.pdf#page=3"
    assert links.first.get_attribute("rel") == "noopener noreferrer"
    assert links.first.text_content() == "[3] <img src=x onerror=window.__pwned=1> (page 3)"
    assert restored.locator(".sbw-citation details").count() == 2
    with page.context.expect_page() as opened:
        links.first.click()
    assert opened.value.url == "https://docs.example.test/manual.pdf#page=3"
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator(f"{WIDGET} script, {WIDGET} img").count() == 0


@pytest.mark.slow
def test_talk_to_a_person(live_api: LiveApi, host: str, page: Any) -> None:
    page.goto(host)
    page.get_by_role("button", name="Chat with Acme support").click()
    answer = _ask(page, RESET_QUESTION)
    page.get_by_role("button", name="Talk to a person").click()
    page.get_by_text("A person has been asked to help.").wait_for()
    conversation_id = _turn(live_api, answer.get_attribute("data-turn-id")).conversation_id
    with open_session(live_api.state.engine) as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None and conversation.handoff and conversation.tenant_id == "acme"
