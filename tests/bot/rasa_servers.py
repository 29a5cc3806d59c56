"""For the action-server tests: ``supportbot actions`` in a subprocess on a loopback port, and webhook
bodies shaped as Rasa sends them (and as the contract describes them)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

SLOT_DESCRIPTION = {"type": "text", "auto_fill": False, "initial_value": None}
DOMAIN: dict[str, Any] = {
    "config": {"store_entities_as_slots": True},
    "intents": [{"ask_question": {"use_entities": True}}, {"supportbot_feedback": {"use_entities": True}}],
    "entities": ["supportbot_rating"],
    "slots": {name: SLOT_DESCRIPTION for name in (
        "supportbot_conversation_id", "supportbot_turn_id", "supportbot_rating", "supportbot_feedback_comment")}
    | {"supportbot_grounded": {"type": "bool", "auto_fill": False}, "supportbot_handoff": {"type": "bool",
                                                                                         "auto_fill": False}},
    "responses": {"utter_greet": [{"text": "Hello!"}]},
    "actions": ["action_supportbot_answer", "action_supportbot_feedback", "action_supportbot_handoff"],
}


def action_call(action: str, *, sender: str, text: str = "", slots: dict[str, str] | None = None,
                entities: list[dict[str, Any]] | None = None, intent: str = "ask_question",
                domain: dict[str, Any] | None = None) -> dict[str, Any]:
    """A webhook body as Rasa 3 sends it (tracker state with the latest user message)."""
    now = int(time.time())
    parse = {"text": text, "intent": {"name": intent, "confidence": 0.97},
             "intent_ranking": [{"name": intent, "confidence": 0.97}], "entities": entities or []}
    tracker = {
        "sender_id": sender, "conversation_id": sender, "slots": slots or {}, "latest_message": parse,
        "latest_event_time": now + 0.5, "paused": False, "latest_input_channel": "rest",
        "latest_action_name": "action_listen", "latest_action": {"action_name": "action_listen"},
        "active_loop": {},
        "events": [{"event": "action", "timestamp": now, "name": "action_listen"},
                   {"event": "user", "timestamp": now, "text": text, "parse_data": parse, "input_channel": "rest"}],
    }
    return {"next_action": action, "sender_id": sender, "tracker": tracker,
            "domain": DOMAIN if domain is None else domain, "version": "3.21.0"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve_actions(*, api_url: str, api_key: str, workdir: Path, **settings: str) -> Iterator[str]:
    """``supportbot actions`` on a free loopback port (the real CLI, Sanic and rasa_sdk); yields its URL.
    ``settings`` are extra ``rasa`` settings, e.g. ``handoff_action=""``."""
    port = free_port()
    env = {**os.environ, "SUPPORTBOT_RASA__API_URL": api_url, "SUPPORTBOT_RASA__API_KEY": api_key,
           **{f"SUPPORTBOT_RASA__{key.upper()}": value for key, value in settings.items()}}
    log = workdir / f"actions-{port}.log"
    cli = Path(sys.executable).with_name("supportbot")
    with log.open("wb") as out:
        process = subprocess.Popen([str(cli), "actions", "--host", "127.0.0.1", "--port", str(port)], cwd=workdir,
                                   env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the action server did not start:\n{log.read_text(errors='replace')}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
