"""``supportbot db upgrade``, ``tenants``, ``keys`` and ``serve``, run as subprocesses."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from core.db.engine import build_engine, open_session
from core.db.migrate import head_revision
from core.db.queries.api_keys import find_active_key, hash_key, list_api_keys
from core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SUPPORTBOT_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "api.cli", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)


def test_tenants_and_keys(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    upgraded = run_cli("db", "upgrade", data_dir=data_dir)
    assert upgraded.returncode == 0 and f"at revision {head_revision()}" in upgraded.stdout
    assert run_cli("tenants", "create", "acme", "--name", "Acme Inc", data_dir=data_dir).returncode == 0
    duplicate = run_cli("tenants", "create", "acme", data_dir=data_dir)
    assert duplicate.returncode == 2 and "already exists" in duplicate.stderr
    assert "acme\tAcme Inc" in run_cli("tenants", "list", data_dir=data_dir).stdout

    created = run_cli("keys", "create", "--tenant", "acme", "--admin", data_dir=data_dir)
    assert created.returncode == 0
    key = created.stdout.strip()
    assert key.startswith("sb_") and "shown once" in created.stderr
    engine = build_engine(Settings(data_dir=data_dir))
    with open_session(engine) as session:
        (row,) = list_api_keys(session, tenant_id="acme")
        assert row.admin and row.key_hash == hash_key(key) and row.prefix == key[:12]
    listed = run_cli("keys", "list", "--tenant", "acme", data_dir=data_dir).stdout
    assert row.prefix in listed and key not in listed

    revoked = run_cli("keys", "revoke", row.prefix, data_dir=data_dir)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    with open_session(engine) as session:
        assert find_active_key(session, key=key) is None
    engine.dispose()
    missing = run_cli("keys", "create", "--tenant", "nobody", data_dir=data_dir)
    assert missing.returncode == 2 and "no tenant 'nobody'" in missing.stderr
    assert run_cli("keys", "revoke", "sb_nothing", data_dir=data_dir).returncode == 2


def test_public_keys(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert run_cli("tenants", "create", "acme", data_dir=data_dir).returncode == 0
    created = run_cli("keys", "create", "--tenant", "acme", "--public", "--name", "widget", data_dir=data_dir)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("sbp_") and "public key" in created.stderr and "data-api-key" in created.stderr
    as_json = run_cli("keys", "create", "--tenant", "acme", "--public", "--json", data_dir=data_dir)
    described = json.loads(as_json.stdout)
    assert described["scope"] == "public" and described["admin"] is False and described["key"].startswith("sbp_")
    full = run_cli("keys", "create", "--tenant", "acme", "--json", data_dir=data_dir)
    assert json.loads(full.stdout)["scope"] == "full" and json.loads(full.stdout)["key"].startswith("sb_")

    both = run_cli("keys", "create", "--tenant", "acme", "--admin", "--public", data_dir=data_dir)
    assert both.returncode == 2 and both.stdout == ""
    assert "a key cannot be both admin and public" in both.stderr

    listed = run_cli("keys", "list", "--tenant", "acme", data_dir=data_dir).stdout.splitlines()
    kinds = {line.split("\t")[0].rstrip("…"): line.split("\t")[1] for line in listed}
    assert kinds == {key[:12]: "public", described["prefix"]: "public", json.loads(full.stdout)["prefix"]: "user"}
    engine = build_engine(Settings(data_dir=data_dir))
    with open_session(engine) as session:
        row = find_active_key(session, key=key)
        assert row is not None and (row.scope, row.admin, row.name) == ("public", False, "widget")
        assert len(list_api_keys(session, tenant_id="acme")) == 3  # the refused admin+public key was not stored
    engine.dispose()


@pytest.mark.slow
def test_serve_answers_http(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "SUPPORTBOT_DATA_DIR": str(tmp_path / "data"), "SUPPORTBOT_GENERATOR__BACKEND": "extractive",
           "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--log-level", "warning"],
                              env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.5)
        assert response.status_code == 200 and response.json()["status"] == "ready"
        assert httpx.post(f"http://127.0.0.1:{port}/v1/chat", json={"message": "hi", "channel": "web"}).status_code == 401
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert server.returncode in (0, -signal.SIGTERM), output  # uvicorn re-raises SIGTERM after a clean shutdown
