"""Sends activities to the Bot Framework connector at an activity's ``serviceUrl``, with a token the
bot obtains for itself (OAuth client credentials for ``teams.app_id``, cached until shortly before
it expires). Sending uses microsoft-agents-hosting-core's ``ConnectorClient``.

Usage::

    sender = ConnectorSender(settings.teams)
    await sender.send(activity.service_url, activity.conversation.id, reply)
"""

from __future__ import annotations

import time

import aiohttp
import httpx
from anyio import Lock
from microsoft_agents.activity import Activity
from microsoft_agents.hosting.core.connector.client import ConnectorClient

from core.errors import BackendUnavailableError, ConfigError
from core.settings import TeamsSettings

_EXPIRY_MARGIN_S = 120


class ConnectorSender:
    """:raises ConfigError: the app id or password is not set."""

    def __init__(self, settings: TeamsSettings, *, timeout_s: float = 15.0) -> None:
        if not (settings.app_id and settings.app_password):
            raise ConfigError("teams.app_id and teams.app_password must be set to reply in Teams")
        self.settings = settings
        self.timeout_s = timeout_s
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = Lock()

    async def token(self) -> str:
        """A connector access token (fetched again shortly before it expires).

        :raises BackendUnavailableError: the token endpoint refused or cannot be reached.
        """
        async with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at:
                password = self.settings.app_password.get_secret_value() if self.settings.app_password else ""
                form = {"grant_type": "client_credentials", "client_id": self.settings.app_id or "",
                        "client_secret": password, "scope": self.settings.token_scope}
                try:
                    async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                        response = await client.post(self.settings.token_url, data=form)
                        response.raise_for_status()
                        body = response.json()
                    token, lifetime = str(body["access_token"]), float(body.get("expires_in", 3600))
                except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                    raise BackendUnavailableError(f"no connector token from {self.settings.token_url}: {exc}") from None
                self._token = token
                self._expires_at = time.monotonic() + max(lifetime - _EXPIRY_MARGIN_S, 0.0)
            return self._token

    async def send(self, service_url: str, conversation_id: str, activity: Activity) -> None:
        """:raises BackendUnavailableError: no token, or the connector refused the activity."""
        client = ConnectorClient(service_url, await self.token())
        try:
            await client.conversations.send_to_conversation(conversation_id, activity)
        except (aiohttp.ClientError, ValueError) as exc:
            raise BackendUnavailableError(f"the connector at {service_url} refused the reply: {exc}") from exc
        finally:
            await client.close()
