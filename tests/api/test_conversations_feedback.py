"""Conversation pages and filters, conversation detail, feedback."""

from __future__ import annotations

import pytest

from tests.api.conftest import RESET_QUESTION, Api

pytestmark = pytest.mark.slow


def _chat(api: Api, message: str = RESET_QUESTION, channel: str = "web") -> dict[str, str]:
    response = api.client.post("/v1/chat", json={"message": message, "channel": channel}, headers=api.headers())
    assert response.status_code == 200
    body: dict[str, str] = response.json()
    return body


def test_pages_and_filters(api: Api) -> None:
    web = _chat(api)
    slack = _chat(api, channel="slack")
    offtopic = _chat(api, "What is the capital of Australia?", channel="web")
    api.client.post("/v1/feedback", json={"turn_id": slack["turn_id"], "rating": "down"}, headers=api.headers())

    def ids(**params: object) -> list[str]:
        response = api.client.get("/v1/conversations", params=params, headers=api.headers())
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert ids() == [offtopic["conversation_id"], slack["conversation_id"], web["conversation_id"]]
    page = api.client.get("/v1/conversations", params={"limit": 2, "offset": 2}, headers=api.headers()).json()
    assert page["total"] == 3 and page["limit"] == 2 and [i["id"] for i in page["items"]] == [web["conversation_id"]]
    assert ids(channel="slack") == [slack["conversation_id"]]
    assert ids(handoff="true") == [offtopic["conversation_id"]]
    assert ids(rating="down") == [slack["conversation_id"]]
    assert ids(rating="up") == []
    assert ids(created_after="2000-01-01T00:00:00Z", created_before="2999-01-01T00:00:00Z") == ids()
    assert ids(created_after="2999-01-01T00:00:00Z") == []
    bad = api.client.get("/v1/conversations", params={"limit": 1000}, headers=api.headers())
    assert bad.status_code == 422 and "query.limit" in bad.json()["error"]["message"]


def test_feedback_is_stored_replaced_and_counted(api: Api) -> None:
    answer = _chat(api)
    first = api.client.post("/v1/feedback", json={"turn_id": answer["turn_id"], "rating": "down",
                                                  "comment": "too vague"}, headers=api.headers())
    assert first.status_code == 200 and first.json()["rating"] == "down"
    second = api.client.post("/v1/feedback", json={"turn_id": answer["turn_id"], "rating": "up", "resolved": True,
                                                   "corrected_answer": "Hold reset for 10 s."}, headers=api.headers())
    assert second.status_code == 200
    detail = api.client.get(f"/v1/conversations/{answer['conversation_id']}", headers=api.headers()).json()
    (turn,) = detail["turns"]
    assert turn["status"] == "answered" and turn["question"] == RESET_QUESTION and turn["citations"]
    assert turn["feedback"]["rating"] == "up" and turn["feedback"]["comment"] is None
    assert turn["feedback"]["corrected_answer"] == "Hold reset for 10 s." and turn["feedback"]["resolved"] is True
    metrics = api.client.get("/metrics").text
    assert 'supportbot_feedback_total{rating="down"} 1.0' in metrics
    assert 'supportbot_feedback_total{rating="up"} 1.0' in metrics
