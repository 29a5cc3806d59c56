"""``supportbot worker`` (the scheduler process) and ``supportbot jobs [list] | run KIND``."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from typing import Any

from core.errors import InvalidInputError
from core.settings import Settings

KINDS = ("reindex", "train", "retention")
STATUSES = ("queued", "running", "succeeded", "failed")


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from api.cli_admin import _engine
    from jobs.scheduler import run_worker

    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        logging.getLogger("jobs").info("received %s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    run_worker(settings, _engine(settings), stop)
    return 0


def _job_json(job: Any) -> dict[str, Any]:
    return {key: (value.isoformat() if hasattr(value, "isoformat") else value)
            for key, value in job.model_dump(mode="json").items()}


def cmd_jobs_list(args: argparse.Namespace, settings: Settings) -> int:
    from api.cli_admin import _engine
    from core.db.engine import open_session
    from core.db.queries.jobs import list_jobs

    with open_session(_engine(settings)) as session:
        rows, total = list_jobs(session, tenant_id=args.tenant, kind=args.kind, status=args.status,
                                limit=args.limit, offset=0)
    if args.json:
        sys.stdout.write(json.dumps([_job_json(row) for row in rows]) + "\n")
        return 0
    if not rows:
        print("no job records")
    for row in rows:
        took = f"{(row.finished_at - row.started_at).total_seconds():.1f}s" if row.started_at and row.finished_at else "-"
        print(f"{row.created_at:%Y-%m-%d %H:%M:%S}  {row.id}  {row.tenant_id}  {row.kind:9} {row.status:9} "
              f"attempt {row.attempt}  {took:>7}  by {row.requested_by}"
              + (f"  error: {row.error}" if row.error else ""))
    if total > len(rows):
        print(f"({total - len(rows)} older not shown; --limit)")
    return 0


def _raise_keyboard_interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def cmd_jobs_run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the job here, through the same lock and records as the worker. Exit status 0 when every
    run succeeded; 1 when one failed (not retried: see :mod:`jobs.runner`) or its lock was held;
    130 when interrupted."""
    from api.cli_admin import _engine
    from jobs.runner import CLI, JobRunner
    from jobs.scheduler import check_tenants_exist, retention_tenants

    engine = _engine(settings)
    check_tenants_exist(settings, engine)
    tenant_arg: str | None = args.tenant
    payload: dict[str, Any] = {}
    if args.source:
        if args.kind != "reindex":
            raise InvalidInputError("--source applies to reindex only")
        named = [s for s in settings.worker.sources if s.name == args.source]
        if not named:
            raise InvalidInputError(f"no source named {args.source!r} in worker.sources")
        if tenant_arg and tenant_arg != named[0].tenant:
            raise InvalidInputError(f"source {args.source!r} belongs to tenant {named[0].tenant!r}, not {tenant_arg!r}")
        payload["source"] = args.source
        tenants = [named[0].tenant]
    elif args.kind == "retention" and not tenant_arg:
        tenants = retention_tenants(settings, engine)
    else:
        tenants = [tenant_arg or settings.default_tenant]
    runner = JobRunner(settings, engine)
    runner.fail_abandoned()
    # SIGTERM (docker stop, a CronJob's deadline) ends the run like Ctrl-C, so its record is
    # marked failed at once instead of staying "running" until the lease expires.
    handles_sigterm = _in_main_thread()  # signal handlers can only be set there
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt) if handles_sigterm else None
    locked = failed = False
    try:
        for tenant in tenants:
            outcome = runner.run_now(args.kind, tenant=tenant, payload=payload, requested_by=CLI)
            if outcome.job_id is None:
                print(f"{args.kind} for {tenant}: already running elsewhere (locked); not run", file=sys.stderr)
                locked = True
                continue
            status = outcome.status.value if outcome.status else "?"
            print(f"{args.kind} for {tenant}: {status} (job {outcome.job_id})"
                  + (f": {outcome.error}" if outcome.error else ""))
            failed = failed or outcome.error is not None
    except KeyboardInterrupt:
        print(f"{args.kind}: interrupted; a run that had started is recorded as failed (not retried)", file=sys.stderr)
        return 130
    finally:
        if handles_sigterm:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
    if failed:
        print("a failed run from the CLI is not retried automatically; fix the cause and run it again "
              "(`supportbot jobs --status failed` lists the records)", file=sys.stderr)
    return 1 if failed or locked else 0


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def add_worker_commands(commands: Any) -> None:
    worker = commands.add_parser("worker", help="run the scheduler (re-index, retrain, retention, queued jobs) "
                                 "until SIGTERM/SIGINT")
    worker.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    worker.set_defaults(handler=cmd_worker)

    jobs = commands.add_parser("jobs", help="list job runs, or run a job now (through the same locks)")
    jobs.add_argument("--kind", choices=KINDS)
    jobs.add_argument("--status", choices=STATUSES)
    jobs.add_argument("--tenant", help="only this tenant's records (default: every tenant); "
                      "with `run`: the tenant to run for")
    jobs.add_argument("--limit", type=int, default=50)
    jobs.add_argument("--json", action="store_true")
    jobs.set_defaults(handler=cmd_jobs_list)
    actions = jobs.add_subparsers(dest="action")
    run = actions.add_parser("run", help="run a job now and record it")
    run.add_argument("kind", choices=KINDS)
    run.add_argument("--source", help="reindex: the worker.sources entry (default: all of the tenant's)")
    # SUPPRESS: when absent here, the namespace keeps `jobs --tenant X`'s value (a default of None
    # would overwrite it), so `jobs --tenant X run K` and `jobs run K --tenant X` mean the same.
    run.add_argument("--tenant", default=argparse.SUPPRESS,
                     help="default: the source's tenant, or settings.default_tenant")
    run.set_defaults(handler=cmd_jobs_run)
