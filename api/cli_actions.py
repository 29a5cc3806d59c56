"""``supportbot actions``: the Rasa action server (rasa-sdk) whose actions call this API over HTTP."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from core.errors import ConfigError
from core.settings import Settings


def cmd_actions(args: argparse.Namespace, settings: Settings) -> int:
    from bot.rasa_actions.server import run_action_server

    if settings.rasa.api_key is None:
        raise ConfigError("rasa.api_key is not set (SUPPORTBOT_RASA__API_KEY): create one with "
                          "`supportbot keys create --tenant TENANT`")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(f"supportbot actions: http://{args.host or settings.rasa.host}:{args.port or settings.rasa.port}/webhook"
          f" -> {settings.rasa.api_url}", flush=True)
    run_action_server(settings.rasa, host=args.host, port=args.port)
    return 0


def add_actions_commands(commands: Any) -> None:
    actions = commands.add_parser("actions", help="run the Rasa action server (point endpoints.yml action_endpoint "
                                  "at http://HOST:PORT/webhook)")
    actions.add_argument("--host", help="default: settings.rasa.host")
    actions.add_argument("--port", type=int, help="default: settings.rasa.port (5055)")
    actions.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    actions.set_defaults(handler=cmd_actions)
