"""For the browser tests: the real app served by uvicorn on a loopback port (in a thread), a second
loopback server for the page that embeds the widget (another origin, so CORS is exercised), and
Debian's Chromium driven by Playwright."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from api.app import create_app
from api.state import AppState
from core.db.engine import open_session
from core.db.queries.api_keys import create_api_key
from core.db.queries.tenants import create_tenant
from core.db.tables import KeyScope
from core.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]


@dataclass
class LiveApi:
    """The app served on ``url``, with tenants ``acme`` (the sample manuals) and ``globex``; ``keys``
    holds a full key of each and ``acme-public``, the public key the widget is embedded with."""

    url: str
    app: FastAPI
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def state(self) -> AppState:
        state: AppState = self.app.state.supportbot
        return state


@contextmanager
def serve_api(data_dir: Path) -> Iterator[LiveApi]:
    settings = Settings(data_dir=data_dir, generator={"backend": "extractive"},
                        api={"rate_limit_per_minute": 100_000, "rate_limit_burst": 10_000})
    app = create_app(settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 180
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API server did not start")
        time.sleep(0.05)
    live = LiveApi(url=f"http://127.0.0.1:{port}", app=app)
    try:
        with open_session(live.state.engine) as session:
            for tenant in ("acme", "globex"):
                create_tenant(session, tenant_id=tenant)
                live.keys[tenant] = create_api_key(session, tenant_id=tenant)[1]
            live.keys["acme-public"] = create_api_key(session, tenant_id="acme", scope=KeyScope.PUBLIC)[1]
        yield live
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@contextmanager
def serve_page(render: Callable[[str], str]) -> Iterator[str]:
    """A page server on another loopback port; ``render(path)`` gives the HTML of each request."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/favicon.ico":
                self.send_response(204)
                self.end_headers()
                return
            body = render(self.path).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
