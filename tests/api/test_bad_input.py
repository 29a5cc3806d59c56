"""Bad input gets a 4xx with a reason, and nothing is stored."""

from __future__ import annotations

import uuid

import pytest

from tests.api.conftest import RESET_QUESTION, Api
from tests.api.test_chat import all_turns

pytestmark = pytest.mark.slow
JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize("body", [b"{not json", b'{"message": "hi", "channel": "web"',
                                  b'{"message": "\xff\xfe caf\xe9", "channel": "web"}'])
def test_malformed_or_non_utf8_json_is_400(api: Api, body: bytes) -> None:
    response = api.client.post("/v1/chat", content=body, headers=api.headers(**JSON))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "malformed_body" and error["message"]
    assert all_turns(api) == []


def test_missing_body_is_422(api: Api) -> None:
    response = api.client.post("/v1/chat", content=b"", headers=api.headers(**JSON))
    assert response.status_code == 422 and response.json()["error"]["message"] == "invalid request: body: Field required"


@pytest.mark.parametrize(("body", "where"), [
    ({"message": 42, "channel": "web"}, "body.message"),
    ({"message": RESET_QUESTION, "channel": "fax"}, "body.channel"),
    ({"message": RESET_QUESTION}, "body.channel"),
    ({"message": RESET_QUESTION, "channel": "web", "tenant": "globex"}, "body.tenant"),
    ({"message": RESET_QUESTION, "channel": "web", "filters": {"tenant": "globex"}}, "body.filters.tenant"),
    ({"message": RESET_QUESTION, "channel": "web", "conversation_id": "not-a-uuid"}, "body.conversation_id"),
    (["a", "list"], "body"),
])
def test_wrong_types_and_unknown_fields_are_422_with_the_field(api: Api, body: object, where: str) -> None:
    response = api.client.post("/v1/chat", json=body, headers=api.headers())
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error" and where in error["message"]
    assert any(detail["location"] == where for detail in error["details"])
    assert all_turns(api) == []


def test_unknown_ids_are_404(api: Api) -> None:
    missing = uuid.uuid4()
    assert api.client.get(f"/v1/conversations/{missing}", headers=api.headers()).status_code == 404
    feedback = api.client.post("/v1/feedback", json={"turn_id": str(missing), "rating": "up"}, headers=api.headers())
    assert feedback.status_code == 404 and feedback.json()["error"]["code"] == "not_found"
    assert api.client.get("/v1/conversations/not-a-uuid", headers=api.headers()).status_code == 422
    assert api.client.delete("/v1/documents/none.md", headers=api.headers()).status_code == 404


def test_unknown_route_and_method_use_the_error_shape(api: Api) -> None:
    missing = api.client.get("/v1/nothing-here", headers=api.headers())
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = api.client.put("/v1/chat", json={}, headers=api.headers())
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"


def test_empty_question_and_bad_feedback_are_422(api: Api) -> None:
    empty = api.client.post("/v1/chat", json={"message": "   ", "channel": "web"}, headers=api.headers())
    assert empty.status_code == 422 and "empty" in empty.json()["error"]["message"]
    rating = api.client.post("/v1/feedback", json={"turn_id": str(uuid.uuid4()), "rating": "meh"},
                             headers=api.headers())
    assert rating.status_code == 422 and "body.rating" in rating.json()["error"]["message"]
    search = api.client.post("/v1/search", json={"query": "reset", "top_k": 0}, headers=api.headers())
    assert search.status_code == 422
    assert all_turns(api) == []
