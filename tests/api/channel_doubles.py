"""A recording HTTP server on loopback, standing in for the platforms' APIs (Slack's Web API, the
Bot Framework connector, its OpenID metadata and token endpoint). Each request is recorded with its
parsed body; ``routes`` answer by path."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


Responder = Callable[[Recorded], tuple[int, dict[str, Any]]]


@dataclass
class RecordingServer:
    url: str
    routes: dict[str, Responder]
    requests: list[Recorded] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def calls(self, path: str) -> list[Recorded]:
        with self.changed:
            return [r for r in self.requests if r.path.split("?")[0] == path]

    def wait_for(self, path: str, count: int = 1, timeout_s: float = 60.0) -> list[Recorded]:
        """The requests to ``path`` once there are at least ``count`` (AssertionError after the timeout)."""
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while True:
                found = [r for r in self.requests if r.path.split("?")[0] == path]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{count} request(s) to {path} expected, got {len(found)}: "
                                         f"{[r.path for r in self.requests]}")
                self.changed.wait(remaining)


def _parse(content_type: str, raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    if "application/json" in content_type:
        parsed: dict[str, Any] = json.loads(raw)
        return parsed
    return {key: values[0] for key, values in parse_qs(raw.decode("utf-8")).items()}


@contextmanager
def recording_server(routes: dict[str, Responder] | None = None) -> Iterator[RecordingServer]:
    server_routes: dict[str, Responder] = dict(routes or {})
    holder: list[RecordingServer] = []

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            record = Recorded(method=self.command, path=self.path, headers={k.lower(): v for k, v in self.headers.items()},
                              body=_parse(self.headers.get("Content-Type", ""), raw))
            recorder = holder[0]
            responder = recorder.routes.get(self.path.split("?")[0])
            status, payload = responder(record) if responder else (404, {"error": "not found"})
            with recorder.changed:
                recorder.requests.append(record)
                recorder.changed.notify_all()
            data = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = _handle
        do_POST = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(RecordingServer(url=f"http://127.0.0.1:{httpd.server_address[1]}", routes=server_routes))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        httpd.shutdown()
        httpd.server_close()
