"""Load benchmark of the HTTP API on loopback: the embedded store with the sample manuals, the
extractive generator, a real `supportbot serve` process, and a bounded async client.

For each concurrency level, C conversations each ask questions in a loop (follow-ups continue the
conversation; a refused request waits briefly, as Retry-After asks) for a fixed time; reported: requests/s, p50/p95 latency of answered
requests, 429/503 counts, and lost turns (accepted requests without a finished turn record), which
must be zero. The API overhead is the p50 latency of non-streaming chat through HTTP at concurrency 1
divided by the p50 of calling the answer service directly, the two alternated call by call.
``--generator local`` serves the embedded default (SmolLM2) instead, for the overhead on answers
that take seconds (use few rounds and one level).

    python benchmarks/api_load.py --levels 1 2 4 8 16 --seconds 10 [--json]
    python benchmarks/api_load.py --generator local --levels 1 --seconds 5 --rounds 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import select

from bot.answer_service import build_answer_service
from core.db.engine import build_engine, open_session
from core.db.migrate import upgrade
from core.db.queries.api_keys import create_api_key
from core.db.queries.tenants import create_tenant
from core.db.tables import Turn
from core.settings import Settings
from knowledge.document_store import build_document_store
from knowledge.evaluation.retrieval_metrics import percentile
from knowledge.indexing import Indexer, SourceMeta
from knowledge.retrieval import metadata_filters

SAMPLES = Path(__file__).resolve().parents[1] / "knowledge" / "samples"
QUESTIONS = ["How do I factory reset the Nimbus R7 router?", "How often does the Lumen Brew 3 ask for descaling?",
             "What does a blinking orange light on the R7 mean?", "How do I update the router firmware?",
             "What is the capital of Australia?", "How long is the warranty?"]


def prepare(data_dir: Path, settings: Settings) -> str:
    manuals = [str(SAMPLES / product) for product in ("nimbus-r7", "lumen-brew3")]  # not the samples' README
    Indexer(settings, build_document_store(settings)).ingest(manuals, SourceMeta(tenant="bench"))
    engine = build_engine(settings)
    upgrade(engine)
    with open_session(engine) as session:
        create_tenant(session, tenant_id="bench")
        key = create_api_key(session, tenant_id="bench")[1]
    engine.dispose()
    return key


def api_overhead(settings: Settings, base: str, key: str, rounds: int) -> tuple[float, float, float]:
    """p50 of the answer service called directly and of the same questions through HTTP, alternated
    call by call so both see the same machine load; and the p50 of ``GET /healthz`` through the same
    client and middleware, the floor any route pays on loopback."""
    service = build_answer_service(settings)  # as the server builds it
    service.warm_up()
    filters = metadata_filters(tenant="bench")
    direct, http, bare = [], [], []
    with httpx.Client(timeout=120, headers={"X-API-Key": key}) as client:
        for _ in range(rounds):
            started = time.perf_counter()
            client.get(f"{base}/healthz").raise_for_status()
            bare.append((time.perf_counter() - started) * 1000)
        for index in range(rounds):
            question = QUESTIONS[index % len(QUESTIONS)]
            started = time.perf_counter()
            service.answer(question, [], filters)
            direct.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            response = client.post(f"{base}/v1/chat", json={"message": question, "channel": "web"})
            http.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    return percentile(direct, 50), percentile(http, 50), percentile(bare, 50)


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) of this process, or of ``pid`` (Linux ``/proc``)."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_level(base: str, key: str, concurrency: int, seconds: float, server_pid: int) -> dict[str, Any]:
    statuses: list[int] = []
    latencies: list[float] = []
    turn_ids: list[str] = []
    stop_at = time.perf_counter() + seconds

    async def conversation(client: httpx.AsyncClient, worker: int) -> None:
        conversation_id = None
        asked = 0
        while time.perf_counter() < stop_at:
            body: dict[str, Any] = {"message": QUESTIONS[(worker + asked) % len(QUESTIONS)], "channel": "web"}
            if conversation_id:
                body["conversation_id"] = conversation_id
            asked += 1
            started = time.perf_counter()
            response = await client.post(f"{base}/v1/chat", json=body, headers={"X-API-Key": key})
            statuses.append(response.status_code)
            if response.status_code == 200:
                latencies.append((time.perf_counter() - started) * 1000)
                turn_ids.append(response.json()["turn_id"])
                conversation_id = response.json()["conversation_id"]
            elif response.status_code in (429, 503):  # a polite client waits before retrying
                await asyncio.sleep(min(float(response.headers.get("Retry-After", 1)), 0.25))

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        started, client_cpu, server_cpu = time.perf_counter(), cpu_seconds(), cpu_seconds(server_pid)
        await asyncio.gather(*(conversation(client, worker) for worker in range(concurrency)))
        elapsed = time.perf_counter() - started
        client_cpu, server_cpu = cpu_seconds() - client_cpu, cpu_seconds(server_pid) - server_cpu
    answered = statuses.count(200)
    return {"concurrency": concurrency, "requests": len(statuses), "answered": answered,
            "answered_per_s": round(answered / elapsed, 2), "p50_ms": round(percentile(latencies, 50), 1),
            "p95_ms": round(percentile(latencies, 95), 1), "rate_limited_429": statuses.count(429),
            "overloaded_503": statuses.count(503), "other": len(statuses) - answered - statuses.count(429)
            - statuses.count(503), "accepted": sum(1 for s in statuses if s not in (429, 503)),
            # cores busy on average: the load generator shares the machine's cores with the server
            "server_cores": round(server_cpu / elapsed, 2), "client_cores": round(client_cpu / elapsed, 2),
            "turn_ids": turn_ids}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each level")
    parser.add_argument("--rounds", type=int, default=40, help="calls for the API overhead ratio")
    parser.add_argument("--concurrency-limit", type=int, default=2, help="api.generator_concurrency")
    parser.add_argument("--queue", type=int, default=4, help="api.generator_queue")
    parser.add_argument("--generator", choices=["extractive", "local"], default="extractive",
                        help="the server's and the direct service's generator")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    data_dir = Path(tempfile.mkdtemp(prefix="supportbot-load-")) / "data"
    env = {**os.environ, "SUPPORTBOT_DATA_DIR": str(data_dir), "SUPPORTBOT_GENERATOR__BACKEND": args.generator,
           "SUPPORTBOT_API__RATE_LIMIT_PER_MINUTE": "1000000", "SUPPORTBOT_API__RATE_LIMIT_BURST": "1000000",
           "SUPPORTBOT_API__GENERATOR_CONCURRENCY": str(args.concurrency_limit),
           "SUPPORTBOT_API__GENERATOR_QUEUE": str(args.queue), "HF_HUB_OFFLINE": "1"}
    settings = Settings(data_dir=data_dir, generator={"backend": args.generator})
    key = prepare(data_dir, settings)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--log-level", "error"],
                              env=env, cwd=Path(__file__).resolve().parents[1])
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the server did not start")
            time.sleep(0.5)
        warm = asyncio.run(run_level(base, key, 1, 2.0, server.pid))  # warm the server's caches
        direct, http, bare = api_overhead(settings, base, key, args.rounds)
        levels = [asyncio.run(run_level(base, key, level, args.seconds, server.pid)) for level in args.levels]
    finally:
        server.terminate()
        server.wait(30)

    engine = build_engine(settings)
    with open_session(engine) as session:
        finished = {str(row.id): row.status for row in session.exec(select(Turn))}
        pending = session.exec(select(func.count()).select_from(Turn).where(Turn.status == "pending")).one()
    accepted = sum(level["accepted"] for level in [warm, *levels]) + args.rounds
    engine.dispose()
    for level in levels:
        level["lost_turns"] = sum(1 for turn_id in level.pop("turn_ids") if finished.get(turn_id) != "answered")
    result = {"generator": args.generator, "generator_concurrency": args.concurrency_limit, "generator_queue": args.queue, "levels": levels,
              "pending_turns_left": int(pending), "accepted_requests": accepted, "turn_records": len(finished),
              "direct_p50_ms": round(direct, 1),
              "http_p50_ms": round(http, 1), "api_overhead_ratio": round(http / direct, 3) if direct else None,
              "bare_http_p50_ms": round(bare, 2)}
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    print(f"{'conc':>5} {'req':>5} {'ok':>5} {'ok/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'429':>5} {'503':>5} {'lost':>5}"
          f" {'server cores':>13} {'client cores':>13}")
    for level in levels:
        print(f"{level['concurrency']:5d} {level['requests']:5d} {level['answered']:5d} {level['answered_per_s']:7.2f} "
              f"{level['p50_ms']:8.1f} {level['p95_ms']:8.1f} {level['rate_limited_429']:5d} "
              f"{level['overloaded_503']:5d} {level['lost_turns']:5d} {level['server_cores']:13.2f} "
              f"{level['client_cores']:13.2f}")
    print(f"accepted requests {accepted}, turn records {len(finished)}, still pending {pending}")
    print(f"API overhead (HTTP p50 / direct p50, non-streaming): "
          f"{result['http_p50_ms']} / {result['direct_p50_ms']} ms = {result['api_overhead_ratio']}; "
          f"GET /healthz alone {result['bare_http_p50_ms']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
