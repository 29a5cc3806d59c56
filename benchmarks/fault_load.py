"""Fault-tolerance load run on loopback: the real app (uvicorn in a thread, real database) with the
remote generator pointed at the TGI test double, C conversations asking in a loop through three
phases of one run:

- ``clean``: no faults (the baseline);
- ``faults``: the double answers 429 / 503 / a stall longer than the generator timeout / a cut
  stream for ``--fault-rate`` of its requests, a share of SQL statements is slowed down (an engine
  event hook installed by this script only), and the document store is unreachable for
  ``--outage-s`` seconds in the middle (the search raises ``ConnectionError``);
- ``recovery``: faults off again; answers must come from the remote generator again.

Printed per phase: requests/s and answers/s, p50/p95 latency of answers, status counts, the share
of extractive fallbacks; and for the whole run the invariants, on a fresh database so that every
turn row was created by this run:

- accepted = turn rows created (a request creates at most one: refusals store nothing); each 200
  names its turn, which must be ``answered``; the rest belong to requests that got a 503/504/500;
- zero lost turns: once the load stops and the answers in flight are done, every turn row has a
  final status (answered / failed / cancelled), and every 200's turn is ``answered``;
- zero unexpected 5xx: none but a 503 with a reason (``overloaded``, ``backend_unavailable``), and
  no request left without a response (client timeout, reset);
- recovered: in the recovery phase the remote generator answers at least
  :data:`RECOVERY_SHARE` as many requests per second as in the clean phase.

    python benchmarks/fault_load.py --conversations 50 --phase-s 40 [--database-url URL] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr
from sqlalchemy import Engine, QueuePool, event
from sqlmodel import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.app import create_app
from core.db.engine import build_engine, open_session
from core.db.migrate import upgrade
from core.db.queries.api_keys import create_api_key
from core.db.queries.tenants import create_tenant
from core.db.tables import Turn
from core.settings import Settings
from knowledge.document_store import build_document_store
from knowledge.evaluation.retrieval_metrics import percentile
from knowledge.indexing import Indexer, SourceMeta
from tests.doubles.tgi_server import Cut, Fail, FakeTgiServer, Reply, Stall

SAMPLES = Path(__file__).resolve().parents[1] / "knowledge" / "samples"
QUESTIONS = ["How do I factory reset the Nimbus R7 router?", "What does the warranty cover?",
             "How do I descale the Lumen Brew 3?", "Why is the status light blinking red?"]
GENERATOR_TIMEOUT_S = 2.0
RECOVERY_SHARE = 0.8
REASONED_503 = ("overloaded", "backend_unavailable")
FINAL_STATUSES = ("answered", "failed", "cancelled")


class Faults:
    """What this run injects; read by the hooks below, switched by the phase clock."""

    def __init__(self, *, fault_rate: float, slow_share: float, slow_s: float, seed: int) -> None:
        self.generator = False
        self.database = False
        self.store_down = False
        self.fault_rate, self.slow_share, self.slow_s = fault_rate, slow_share, slow_s
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def draw(self) -> float:
        with self._lock:
            return self._rng.random()

    def behaviour(self) -> Any:
        """The double's next behaviour: one of four faults for ``fault_rate`` of requests while on."""
        if not self.generator or self.draw() >= self.fault_rate:
            return Reply("Hold the reset button for ten seconds [1].")
        kind = int(self.draw() * 4)
        return [Fail(429, retry_after="1"), Fail(503), Stall(GENERATOR_TIMEOUT_S * 2),
                Cut("Hold the reset button for ten seconds", after_chunks=2)][kind]


def slow_down(engine: Engine, faults: Faults) -> None:
    """An engine hook of this benchmark only: a share of statements waits before running."""

    @event.listens_for(engine, "before_cursor_execute")
    def _slow(*_args: Any) -> None:
        if faults.database and faults.draw() < faults.slow_share:
            time.sleep(faults.slow_s)


def unplug_store_while(search: Any, faults: Faults) -> None:
    """Wrap the retrieval pipeline of the answer service's search so it raises a connection error
    while the store is "gone" (what the Elasticsearch client does when the cluster is away)."""
    real = search.pipeline.run

    def run_or_fail(*args: Any, **kwargs: Any) -> Any:
        if faults.store_down:
            raise ConnectionError("document store unreachable (injected outage)")
        return real(*args, **kwargs)

    search.pipeline.run = run_or_fail


class FaultyTgi(FakeTgiServer):
    """The contract-checked double, its next behaviour drawn from :class:`Faults` per request."""

    def __init__(self, faults: Faults) -> None:
        super().__init__()
        self.faults = faults

    def __enter__(self) -> FaultyTgi:
        self.start()
        return self

    def refill(self) -> None:
        self.script(*[self.faults.behaviour() for _ in range(200)])


@contextmanager
def serve(settings: Settings, engine: Engine, faults: Faults) -> Iterator[tuple[str, str, Any]]:
    app = create_app(settings, engine=engine)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the API server did not start")
        time.sleep(0.05)
    state = app.state.supportbot
    unplug_store_while(state.service.pipeline.search, faults)
    with open_session(engine) as session:
        create_tenant(session, tenant_id="acme")
        key = create_api_key(session, tenant_id="acme")[1]
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", key, state
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()


async def conversation(client: httpx.AsyncClient, base: str, key: str, phase: list[str], stop: float,
                       results: list[dict[str, Any]], seed: int) -> None:
    rng = random.Random(seed)
    conversation_id: str | None = None
    while time.monotonic() < stop:
        body: dict[str, Any] = {"message": rng.choice(QUESTIONS), "channel": "web"}
        if conversation_id and rng.random() < 0.7:
            body["conversation_id"] = conversation_id
        started, name = time.perf_counter(), phase[0]
        try:
            response = await client.post(f"{base}/v1/chat", json=body, headers={"X-API-Key": key})
            status, data = response.status_code, response.json()
            if status != 200:
                data = {"code": (data.get("error") or {}).get("code") if isinstance(data, dict) else None}
        except httpx.HTTPError as exc:
            status, data = 0, {"error": f"{type(exc).__name__}: {exc}"}
        results.append({"phase": name, "status": status, "ms": (time.perf_counter() - started) * 1000,
                        "generator": data.get("generator"), "error": data.get("error"),
                        "code": data.get("code"), "turn_id": data.get("turn_id")})
        if status == 200:
            conversation_id = data["conversation_id"]
        elif status in (429, 503):  # as Retry-After asks
            await asyncio.sleep(0.5)


def phase_report(rows: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    ok = [r["ms"] for r in rows if r["status"] == 200]
    answered = [r for r in rows if r["status"] == 200]
    remote = sum(r["generator"] not in (None, "extractive") for r in answered)
    return {"requests": len(rows), "requests_per_s": round(len(rows) / seconds, 2),
            "answers_per_s": round(len(ok) / seconds, 2), "remote_answers_per_s": round(remote / seconds, 2),
            "p50_ms": round(percentile(ok, 50), 1) if ok else None,
            "p95_ms": round(percentile(ok, 95), 1) if ok else None,
            "statuses": dict(Counter(str(r["status"]) + (f" {r['code']}" if r["code"] else "") for r in rows)),
            "extractive_share": round(sum(r["generator"] == "extractive" for r in answered) / max(len(answered), 1), 3),
            "remote_answers": remote}


async def drive(base: str, key: str, faults: Faults, tgi: FaultyTgi, state: Any, args: argparse.Namespace
                ) -> tuple[list[dict[str, Any]], dict[str, float], dict[str, int]]:
    """The load, and the peaks of database connections checked out and of answers admitted."""
    phase = ["clean"]
    peaks = {"db_connections": 0, "answers_admitted": 0}
    pool = state.engine.pool
    results: list[dict[str, Any]] = []
    total = args.phase_s * 3
    stop = time.monotonic() + total
    # Idle connections expire on the client before uvicorn closes them (keep-alive 5 s): otherwise a
    # request sent on a connection the server is closing at that moment fails with a ReadError.
    limits = httpx.Limits(max_connections=args.conversations + 10, keepalive_expiry=2.0)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        tasks = [asyncio.create_task(conversation(client, base, key, phase, stop, results, seed))
                 for seed in range(args.conversations)]
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < total:
            name = "clean" if elapsed < args.phase_s else "faults" if elapsed < 2 * args.phase_s else "recovery"
            if name != phase[0]:
                phase[0] = name
                faults.generator = faults.database = name == "faults"
            in_fault = elapsed - args.phase_s
            outage_start = (args.phase_s - args.outage_s) / 2
            faults.store_down = name == "faults" and outage_start <= in_fault < outage_start + args.outage_s
            if len(tgi._state.behaviours) < 100:
                tgi.refill()
            elif name != "faults" and any(not isinstance(b, Reply) for b in tgi._state.behaviours):
                with tgi._state.lock:
                    tgi._state.behaviours.clear()
            if isinstance(pool, QueuePool):
                peaks["db_connections"] = max(peaks["db_connections"], pool.checkedout())
            peaks["answers_admitted"] = max(peaks["answers_admitted"], state.gate.admitted)
            await asyncio.sleep(0.2)
        await asyncio.gather(*tasks)
    return results, {"clean": args.phase_s, "faults": args.phase_s, "recovery": args.phase_s}, peaks


def settled_turns(engine: Engine, state: Any, *, wait_s: float) -> dict[str, str]:
    """Every turn row's status once the answers still in flight are done (or ``wait_s`` passed):
    a request whose client gave up may still be answering on the server."""
    deadline = time.monotonic() + wait_s
    while True:
        with open_session(engine) as session:
            rows = {str(turn_id): str(status) for turn_id, status in session.exec(select(Turn.id, Turn.status)).all()}
        if time.monotonic() > deadline or (state.gate.admitted == 0 and "pending" not in rows.values()):
            return rows
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--phase-s", type=float, default=40.0, help="seconds of each of the three phases")
    parser.add_argument("--outage-s", type=float, default=10.0, help="document store outage inside the fault phase")
    parser.add_argument("--fault-rate", type=float, default=0.2)
    parser.add_argument("--slow-share", type=float, default=0.2, help="share of SQL statements slowed down")
    parser.add_argument("--slow-ms", type=float, default=50.0)
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (a temporary schema is used)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    faults = Faults(fault_rate=args.fault_rate, slow_share=args.slow_share, slow_s=args.slow_ms / 1000, seed=7)
    with tempfile.TemporaryDirectory() as tmp, FaultyTgi(faults) as tgi, _database(args.database_url) as db_url:
        data_dir = Path(tmp) / "data"
        settings = Settings(data_dir=data_dir, database={"url": SecretStr(db_url)} if db_url else {},
                            generator={"backend": "remote", "timeout_s": GENERATOR_TIMEOUT_S,
                                       "remote": {"url": tgi.url, "max_retries": 1, "backoff_base_s": 0.2,
                                                  "backoff_max_s": 0.5}},
                            api={"rate_limit_per_minute": 1_000_000, "rate_limit_burst": 100_000})
        store = build_document_store(settings)
        for product in ("nimbus-r7", "lumen-brew3"):
            Indexer(settings, store).ingest([str(SAMPLES / product)], SourceMeta(tenant="acme", product=product))
        engine = build_engine(settings)
        upgrade(engine)
        slow_down(engine, faults)
        tgi.refill()
        with serve(settings, engine, faults) as (base, key, state):
            results, seconds, peaks = asyncio.run(drive(base, key, faults, tgi, state, args))
            turn_rows = settled_turns(engine, state, wait_s=30)
        engine.dispose()
        violations = tgi.violations
        shutil.rmtree(data_dir, ignore_errors=True)
    report = {**_report(results, seconds, turn_rows, violations), "peaks": peaks}
    print(json.dumps(report, indent=None if args.json else 2))
    passed = (report["lost_turns"] == 0 and report["unaccounted_turns"] == 0 and report["unexpected_5xx"] == 0
              and report["no_response"] == 0 and report["recovered"])
    return 0 if passed else 1


def _report(results: list[dict[str, Any]], seconds: dict[str, float], turn_rows: dict[str, str],
            violations: list[str]) -> dict[str, Any]:
    phases = {name: phase_report([r for r in results if r["phase"] == name], s) for name, s in seconds.items()}
    answered_ids = [str(r["turn_id"]) for r in results if r["status"] == 200]
    # Every other turn row belongs to a request answered with an error after its turn was written;
    # refused requests (503 overloaded, 429, 4xx) have none, so these can be at most as many.
    failed_after_turn = [r for r in results if (r["status"] >= 500 and r["code"] != "overloaded") or r["status"] == 0]
    not_final = sum(status not in FINAL_STATUSES for status in turn_rows.values())
    answered_but_not_stored = sum(turn_rows.get(turn_id) != "answered" for turn_id in answered_ids)
    clean, faulty = phases["clean"], phases["faults"]
    return {
        "phases": phases,
        "ratios_faults_vs_clean": {
            "answers_per_s": round(faulty["answers_per_s"] / clean["answers_per_s"], 3) if clean["answers_per_s"] else None,
            "p50": round(faulty["p50_ms"] / clean["p50_ms"], 3) if clean["p50_ms"] and faulty["p50_ms"] else None,
            "p95": round(faulty["p95_ms"] / clean["p95_ms"], 3) if clean["p95_ms"] and faulty["p95_ms"] else None},
        "accepted": len(turn_rows), "turn_records": dict(Counter(turn_rows.values())),
        "answered_200": len(answered_ids), "turns_of_error_responses": len(turn_rows) - len(set(answered_ids)),
        "error_responses_after_admission": len(failed_after_turn),
        # Turns no request accounts for (a refused request that stored one): must be none.
        "unaccounted_turns": max(0, len(turn_rows) - len(set(answered_ids)) - len(failed_after_turn)),
        "lost_turns": not_final + answered_but_not_stored,
        "unexpected_5xx": sum(r["status"] >= 500 and not (r["status"] == 503 and r["code"] in REASONED_503)
                              for r in results),
        "no_response": sum(r["status"] == 0 for r in results),
        "deliberate_503_by_code": dict(Counter(str(r["code"]) for r in results if r["status"] == 503)),
        "client_errors": dict(Counter(str(r["error"])[:80] for r in results if r["status"] == 0)),
        # Back to the remote generator at about the clean rate (abstentions and answers failing the
        # citation check are extractive in every phase, so the clean phase is the yardstick).
        "recovered": phases["recovery"]["remote_answers_per_s"] >= RECOVERY_SHARE * clean["remote_answers_per_s"] > 0,
        "contract_violations": violations[:5],
    }


@contextmanager
def _database(url: str | None) -> Iterator[str | None]:
    if url is None:
        yield None
        return
    os.environ["SUPPORTBOT_TEST_POSTGRES_URL"] = url  # read when tests.postgres is imported
    from tests.postgres import temporary_schema

    with temporary_schema() as schema_url:
        yield schema_url


if __name__ == "__main__":
    sys.exit(main())
