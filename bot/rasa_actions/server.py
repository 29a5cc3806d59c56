"""The action server: rasa_sdk's own Sanic app (``rasa_sdk.endpoint.create_app``) with the supportbot
actions registered, plus a check that turns a malformed ``POST /webhook`` body into a 400 in the
contract's rejection shape (``{"error", "action_name"}``) where rasa_sdk would answer 500.

Example::

    app = build_action_app(get_settings().rasa)
    app.run(host="127.0.0.1", port=5055, single_process=True)
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from rasa_sdk.endpoint import create_app
from rasa_sdk.executor import ActionExecutor
from sanic import Request, Sanic, response
from sanic.response import HTTPResponse

from bot.rasa_actions.actions import supportbot_actions
from bot.rasa_actions.api_client import SupportbotApiClient
from core.settings import RasaSettings


def build_action_app(settings: RasaSettings, client: SupportbotApiClient | None = None) -> Sanic:
    """rasa_sdk's app serving ``action_supportbot_answer``, ``..._feedback`` and ``..._handoff``.

    :param settings: the ``rasa`` settings (API URL and key, timeouts, handoff action).
    :param client: an API client to use instead of one built from ``settings``.
    :returns: the Sanic app; its API client is closed when the server stops.
    """
    api = client or SupportbotApiClient.from_settings(settings)
    executor = ActionExecutor()
    for action in supportbot_actions(api, settings):
        executor.register_action(action)
    app = create_app(executor, cors_origins=None)

    @app.on_request
    async def reject_malformed_calls(request: Request) -> HTTPResponse | None:
        if request.method != "POST" or request.path != "/webhook":
            return None
        problem, action_name = malformed_call(request.body, request.headers.get("Content-Encoding"))
        if problem is None:
            return None
        body = {"error": problem} | ({"action_name": action_name} if action_name else {})
        return response.json(body, status=400)

    @app.after_server_stop
    async def close_api_client(_app: Sanic) -> None:
        await api.aclose()

    return app


def malformed_call(raw: bytes, content_encoding: str | None = None) -> tuple[str | None, str | None]:
    """Why a webhook body cannot be an action call (None when it can), and its action name if known."""
    try:
        data = zlib.decompress(raw) if content_encoding == "deflate" else raw
        call: Any = json.loads(data)
    except (zlib.error, ValueError):
        return "the body is not valid JSON", None
    if not isinstance(call, dict):
        return "the body must be a JSON object", None
    action_name = call.get("next_action")
    if not isinstance(action_name, str) or not action_name:
        return "next_action must be a non-empty string", None
    tracker = call.get("tracker")
    if not isinstance(tracker, dict) or not isinstance(tracker.get("sender_id"), str):
        return "tracker must be an object with a sender_id string", action_name
    if "domain" in call and not isinstance(call["domain"], dict):
        return "domain must be an object", action_name
    return None, action_name


def run_action_server(settings: RasaSettings, *, host: str | None = None, port: int | None = None) -> None:
    """Serve the actions until interrupted (one process: the actions wait on the API, not the CPU)."""
    app = build_action_app(settings)
    app.run(host=host or settings.host, port=port or settings.port, single_process=True, motd=False,
            access_log=False)
