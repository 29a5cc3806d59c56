"""A scriptable stand-in for a Text Generation Inference server, on a real loopback socket.

It speaks what our clients use of TGI: ``POST /v1/chat/completions`` (server-sent events when
``stream`` is true, a JSON ``ChatCompletion`` otherwise), ``GET /health`` and ``GET /info``. Every
request body it receives and every body or event it sends is validated against TGI's own OpenAPI
document (:mod:`tests.doubles.tgi_contract`); violations are collected in :attr:`FakeTgiServer.violations`
for the test to assert empty, and a request that breaks the contract gets TGI's 422 answer.

Each chat request takes the next scripted behaviour (a reply, an error status, a stall, a cut
stream, an in-stream error); with nothing scripted it replies with :data:`DEFAULT_REPLY`.

Example::

    with FakeTgiServer() as tgi:
        tgi.script(Fail(429, retry_after="1"), Reply("Hello there"))
        ...  # point a client at tgi.url
        assert tgi.requests[-1].body["model"] == "support-v3"
        assert tgi.violations == []
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.doubles.tgi_contract import TgiContract

DEFAULT_REPLY = "Hello from the TGI test double."
MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
_FINGERPRINT = "3.3.6-dev0-native"  # the version of the OpenAPI document this double follows


@dataclass(frozen=True)
class Reply:
    """Stream ``text`` word by word (one chunk per word), the last chunk carrying ``finish_reason``."""

    text: str
    finish_reason: str = "stop"


@dataclass(frozen=True)
class Fail:
    """Answer ``status`` with TGI's ``ErrorResponse`` body, and a ``Retry-After`` header if given."""

    status: int
    error: str = "Model is overloaded"
    error_type: str = "overloaded"
    retry_after: str | None = None


@dataclass(frozen=True)
class Stall:
    """Wait ``seconds`` before the status line (``after_chunks=None``) or after that many chunks of
    ``text``, then carry on with the reply. The wait ends early when the server closes."""

    seconds: float
    after_chunks: int | None = None
    text: str = "This reply arrives late"


@dataclass(frozen=True)
class Cut:
    """Stream ``after_chunks`` chunks of ``text``, then drop the connection (no finish, no ``[DONE]``)."""

    text: str
    after_chunks: int


@dataclass(frozen=True)
class StreamError:
    """Stream ``after_chunks`` chunks of ``text``, then TGI's in-stream error event."""

    error: str
    error_type: str = "generation"
    text: str = ""
    after_chunks: int = 0


Behaviour = Reply | Fail | Stall | Cut | StreamError


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any = None


@dataclass
class _State:
    """What the handler threads share with the test, behind one lock."""

    contract: TgiContract
    lock: threading.Lock = field(default_factory=threading.Lock)
    behaviours: deque[Behaviour] = field(default_factory=deque)
    requests: list[RecordedRequest] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    closing: threading.Event = field(default_factory=threading.Event)

    def check(self, schema_name: str, instance: Any, direction: str) -> bool:
        found = self.contract.violations(schema_name, instance)
        if found:
            with self.lock:
                self.violations.extend(f"{direction}: {violation}" for violation in found)
        return not found

    def violation(self, message: str) -> None:
        with self.lock:
            self.violations.append(message)


class FakeTgiServer:
    """The double: start it (or use it as a context manager), script it, point a client at :attr:`url`."""

    def __init__(self, contract: TgiContract | None = None) -> None:
        self._state = _State(contract or TgiContract.load())
        self._server = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._server.state = self._state
        # A short poll interval: shutdown() waits up to one interval, once per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-tgi", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeTgiServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._state.closing.set()  # ends stalls, so shutdown does not wait for them
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeTgiServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours for the next chat requests, one each, in order."""
        with self._state.lock:
            self._state.behaviours.extend(behaviours)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, malformed ones included."""
        with self._state.lock:
            return list(self._state.requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [request for request in self.requests if request.path == "/v1/chat/completions"]

    @property
    def violations(self) -> list[str]:
        """Contract violations seen so far, in requests and in the double's own answers."""
        with self._state.lock:
            return list(self._state.violations)

    def take_violations(self) -> list[str]:
        """The violations so far, forgotten afterwards (for tests that provoke them on purpose)."""
        with self._state.lock:
            taken, self._state.violations = self._state.violations, []
            return taken


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a handler stuck writing to a gone client must not block close()
    state: _State


def _pieces(text: str) -> list[str]:
    """Word-sized chunks that join back to ``text`` exactly (whitespace kept with the word before)."""
    return re.findall(r"\s*\S+\s*", text) or [""]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked streaming, as TGI (axum) sends it
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        return  # keep test output quiet; requests are recorded instead

    # ---- routes -------------------------------------------------------------------------------

    def do_GET(self) -> None:
        state = self.server.state
        self._record(None)
        if self.path == "/health":
            self._send_json(200, None)
        elif self.path == "/info":
            self._send_json(200, self._info(), schema_name="Info")
        else:
            state.violation(f"request: GET {self.path} is not a route our clients should use")
            self._send_json(404, {"error": f"no route {self.path}", "error_type": "not_found"}, "ErrorResponse")

    def do_POST(self) -> None:
        state = self.server.state
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        self._record(body)
        if self.path != "/v1/chat/completions":
            state.violation(f"request: POST {self.path} is not a route our clients should use")
            self._send_error(404, f"no route {self.path}", "not_found")
            return
        if not self.headers.get("Content-Type", "").startswith("application/json"):
            state.violation(f"request: Content-Type {self.headers.get('Content-Type')!r}, not application/json")
        if not state.check("ChatRequest", body, "request"):
            self._send_error(422, "Input validation error: the request does not match ChatRequest", "validation")
            return
        with state.lock:
            behaviour = state.behaviours.popleft() if state.behaviours else Reply(DEFAULT_REPLY)
        try:
            if body.get("stream"):
                self._stream(behaviour)
            else:
                self._complete(behaviour)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (its timeout); nothing left to answer

    # ---- behaviours ---------------------------------------------------------------------------

    def _stream(self, behaviour: Behaviour) -> None:
        if isinstance(behaviour, Fail):
            self._send_error(behaviour.status, behaviour.error, behaviour.error_type, behaviour.retry_after)
            return
        if isinstance(behaviour, Stall) and behaviour.after_chunks is None:
            self.server.state.closing.wait(behaviour.seconds)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if isinstance(behaviour, Reply):
            self._send_pieces(_pieces(behaviour.text), behaviour.finish_reason)
        elif isinstance(behaviour, Stall):
            pieces, sent = _pieces(behaviour.text), behaviour.after_chunks or 0
            self._send_pieces(pieces[:sent], None)
            if behaviour.after_chunks is not None:
                self.server.state.closing.wait(behaviour.seconds)
            self._send_pieces(pieces[sent:], "stop")
        elif isinstance(behaviour, Cut):
            self._send_pieces(_pieces(behaviour.text)[: behaviour.after_chunks], None)
            self.close_connection = True  # drop the connection: the chunked body never terminates
            return
        else:  # StreamError: TGI reports a failure after the 200 as an event, then ends the stream
            self._send_pieces(_pieces(behaviour.text)[: behaviour.after_chunks] if behaviour.text else [], None)
            self._send_event({"error": behaviour.error, "error_type": behaviour.error_type}, "ErrorResponse")
            self._write_chunk(b"")
            return
        self._write_chunk(b"data: [DONE]\n\n")
        self._write_chunk(b"")

    def _send_pieces(self, pieces: list[str], finish_reason: str | None) -> None:
        """One chunk per piece; the last carries ``finish_reason`` (``None``: the reply goes on)."""
        for index, piece in enumerate(pieces):
            finish = finish_reason if index == len(pieces) - 1 else None
            self._send_event(self._chunk(piece, finish), "ChatCompletionChunk")

    def _complete(self, behaviour: Behaviour) -> None:
        if isinstance(behaviour, Fail):
            self._send_error(behaviour.status, behaviour.error, behaviour.error_type, behaviour.retry_after)
            return
        if isinstance(behaviour, Stall):
            self.server.state.closing.wait(behaviour.seconds)
        elif not isinstance(behaviour, Reply):
            self.server.state.violation(f"script: {type(behaviour).__name__} needs a streaming request")
            self._send_error(500, "the test scripted a streaming behaviour", "incomplete_generation")
            return
        text = behaviour.text
        completion_tokens = len(_pieces(text))
        self._send_json(
            200,
            {
                "object": "chat.completion",
                "id": "",
                "created": int(time.time()),
                "model": MODEL_ID,
                "system_fingerprint": _FINGERPRINT,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "logprobs": None,
                        "finish_reason": behaviour.finish_reason if isinstance(behaviour, Reply) else "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": completion_tokens,
                          "total_tokens": 1 + completion_tokens},
            },
            schema_name="ChatCompletion",
        )

    # ---- wire helpers -------------------------------------------------------------------------

    def _record(self, body: Any) -> None:
        state = self.server.state
        with state.lock:
            state.requests.append(RecordedRequest(self.command, self.path, dict(self.headers.items()), body))

    def _chunk(self, content: str, finish_reason: str | None) -> dict[str, Any]:
        return {
            "object": "chat.completion.chunk",
            "id": "",
            "created": int(time.time()),
            "model": MODEL_ID,
            "system_fingerprint": _FINGERPRINT,
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": content},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": None,
        }

    def _info(self) -> dict[str, Any]:
        return {
            "model_id": MODEL_ID,
            "model_sha": None,
            "model_pipeline_tag": "text-generation",
            "max_concurrent_requests": 128,
            "max_best_of": 2,
            "max_stop_sequences": 4,
            "max_input_tokens": 4095,
            "max_total_tokens": 4096,
            "validation_workers": 2,
            "max_client_batch_size": 4,
            "router": "text-generation-router",
            "version": "3.3.6-dev0",
            "sha": None,
            "docker_label": None,
        }

    def _send_event(self, payload: dict[str, Any], schema_name: str) -> None:
        self.server.state.check(schema_name, payload, "response")
        self._write_chunk(f"data: {json.dumps(payload)}\n\n".encode())

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _send_error(self, status: int, error: str, error_type: str, retry_after: str | None = None) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self._send_json(status, {"error": error, "error_type": error_type}, "ErrorResponse", headers)

    def _send_json(
        self,
        status: int,
        payload: dict[str, Any] | None,
        schema_name: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if schema_name is not None:
            self.server.state.check(schema_name, payload, "response")
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
