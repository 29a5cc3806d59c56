"""``supportbot serve``, ``supportbot db upgrade``, ``supportbot tenants create|list`` and
``supportbot keys create|list|revoke``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from core.settings import Settings

if TYPE_CHECKING:
    from core.db.tables import ApiKey


def _engine(settings: Settings) -> Any:
    from core.db.engine import build_engine
    from core.db.migrate import upgrade

    engine = build_engine(settings)
    upgrade(engine)
    return engine


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from api.app import create_app

    uvicorn.run(create_app(settings), host=args.host or settings.api.host, port=args.port or settings.api.port,
                log_level=args.log_level, timeout_graceful_shutdown=10)
    return 0


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from core.db.engine import database_url
    from core.db.migrate import current_revision

    engine = _engine(settings)
    print(f"{database_url(settings).render_as_string(hide_password=True)}: at revision {current_revision(engine)}")
    return 0


def cmd_tenants_create(args: argparse.Namespace, settings: Settings) -> int:
    from core.db.engine import open_session
    from core.db.queries.tenants import create_tenant

    with open_session(_engine(settings)) as session:
        tenant = create_tenant(session, tenant_id=args.tenant_id, name=args.name or "")
    print(f"created tenant {tenant.id}")
    return 0


def cmd_tenants_list(args: argparse.Namespace, settings: Settings) -> int:
    from core.db.engine import open_session
    from core.db.queries.tenants import list_tenants

    with open_session(_engine(settings)) as session:
        tenants = list_tenants(session)
    if args.json:
        sys.stdout.write(json.dumps([{"id": t.id, "name": t.name, "created_at": t.created_at.isoformat()}
                                     for t in tenants]) + "\n")
    for tenant in [] if args.json else tenants:
        print(f"{tenant.id}\t{tenant.name}\t{tenant.created_at:%Y-%m-%d %H:%M}")
    return 0


def _key_kind(row: ApiKey) -> str:
    from core.db.tables import KeyScope

    return "public" if row.scope == KeyScope.PUBLIC else "admin" if row.admin else "user"


def cmd_keys_create(args: argparse.Namespace, settings: Settings) -> int:
    from core.db.engine import open_session
    from core.db.queries.api_keys import create_api_key
    from core.db.tables import KeyScope

    scope = KeyScope.PUBLIC if args.public else KeyScope.FULL
    with open_session(_engine(settings)) as session:
        row, key = create_api_key(session, tenant_id=args.tenant, admin=args.admin, scope=scope, name=args.name or "")
    if args.json:
        sys.stdout.write(json.dumps({"key": key, "prefix": row.prefix, "tenant": row.tenant_id, "admin": row.admin,
                                     "scope": row.scope}) + "\n")
    else:
        print(key)
        use = "; for the chat widget's data-api-key only" if _key_kind(row) == "public" else ""
        print(f"(tenant {row.tenant_id}, {_key_kind(row)} key{use}; shown once, stored hashed; "
              f"revoke with `supportbot keys revoke {row.prefix}`)", file=sys.stderr)
    return 0


def cmd_keys_list(args: argparse.Namespace, settings: Settings) -> int:
    from core.db.engine import open_session
    from core.db.queries.api_keys import list_api_keys

    with open_session(_engine(settings)) as session:
        for row in list_api_keys(session, tenant_id=args.tenant):
            state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
            print(f"{row.prefix}…\t{_key_kind(row)}\t{state}\t{row.name}")
    return 0


def cmd_keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from core.db.engine import open_session
    from core.db.queries.api_keys import revoke_api_key

    with open_session(_engine(settings)) as session:
        row = revoke_api_key(session, prefix=args.prefix.rstrip("…"))
    print(f"revoked {row.prefix}… (tenant {row.tenant_id})")
    return 0


def add_admin_commands(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the HTTP API (uvicorn)")
    serve.add_argument("--host", help="default: settings.api.host")
    serve.add_argument("--port", type=int, help="default: settings.api.port")
    serve.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    serve.set_defaults(handler=cmd_serve)

    db = commands.add_parser("db", help="database schema")
    db_actions = db.add_subparsers(dest="action", required=True)
    db_actions.add_parser("upgrade", help="apply the Alembic migrations").set_defaults(handler=cmd_db_upgrade)

    tenants = commands.add_parser("tenants", help="create and list tenants")
    tenant_actions = tenants.add_subparsers(dest="action", required=True)
    create = tenant_actions.add_parser("create", help="create a tenant (its id labels its documents)")
    create.add_argument("tenant_id", metavar="TENANT")
    create.add_argument("--name")
    create.set_defaults(handler=cmd_tenants_create)
    listing = tenant_actions.add_parser("list")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_tenants_list)

    keys = commands.add_parser("keys", help="create, list and revoke API keys")
    key_actions = keys.add_subparsers(dest="action", required=True)
    key_create = key_actions.add_parser("create", help="create a key and print it once")
    key_create.add_argument("--tenant", required=True)
    key_create.add_argument("--admin", action="store_true", help="may use the /v1/admin routes")
    key_create.add_argument("--public", action="store_true",
                            help="a publishable key (sbp_...) for the chat widget's data-api-key: it may only chat "
                                 "on the web channel, rate answers, hand over and restore its conversations")
    key_create.add_argument("--name", help="a label, e.g. who uses the key")
    key_create.add_argument("--json", action="store_true")
    key_create.set_defaults(handler=cmd_keys_create)
    key_list = key_actions.add_parser("list", help="a tenant's keys (prefix, user/admin/public, state, name)")
    key_list.add_argument("--tenant", required=True)
    key_list.set_defaults(handler=cmd_keys_list)
    revoke = key_actions.add_parser("revoke", help="revoke a key by its prefix")
    revoke.add_argument("prefix", metavar="PREFIX")
    revoke.set_defaults(handler=cmd_keys_revoke)
