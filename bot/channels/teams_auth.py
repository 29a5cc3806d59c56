"""Authenticates requests from the Bot Framework connector, as its documentation requires: a JWT in
``Authorization: Bearer``, signed by a key of the JWKS named by the OpenID metadata (``jwks_uri``),
issued by ``https://api.botframework.com``, with the bot's app id as audience, not expired (5 minutes
of clock skew allowed), a ``serviceUrl`` claim equal to the activity's ``serviceUrl``, so a
stolen token cannot make the bot send replies (with its own credentials) to another host, and a
signing key that endorses the activity's ``channelId`` when the key lists endorsements.

Validated here with PyJWT and ``PyJWKClient`` rather than with microsoft-agents-hosting-core's
``JwtTokenValidator``: that one takes its keys from a fixed botframework.com address (no metadata
URL can be configured, so it cannot be pointed at a test or sovereign-cloud endpoint) and does not
check the ``serviceUrl`` claim.

Usage::

    auth = BotConnectorAuth(settings.teams)
    token = await auth.verify(request.headers.get("authorization"))   # before the body is read
    token.check_activity(activity.service_url, "msteams")
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from anyio import Lock, to_thread

from core.errors import AuthenticationError, BackendUnavailableError, ConfigError
from core.settings import TeamsSettings

_METADATA_TTL_S = 24 * 3600  # the connector's keys rotate rarely; PyJWKClient refetches on an unknown kid


class _EndorsedKeyClient(jwt.PyJWKClient):
    """A ``PyJWKClient`` that also keeps each key's ``endorsements`` (the channels it may sign
    for), which ``PyJWK`` drops."""

    endorsements: dict[str, list[str]]

    def fetch_data(self) -> Any:
        data = super().fetch_data()
        keys = data.get("keys", []) if isinstance(data, dict) else []
        self.endorsements = {key["kid"]: [str(item) for item in key["endorsements"]] for key in keys
                             if isinstance(key, dict) and isinstance(key.get("kid"), str)
                             and isinstance(key.get("endorsements"), list)}
        return data


@dataclass(frozen=True)
class ConnectorToken:
    """A token whose signature, issuer, audience and lifetime are verified; what it says about the
    activity is checked by :meth:`check_activity`."""

    claims: dict[str, Any]
    endorsements: list[str] | None
    """The channels the signing key may sign for (None: the key lists none)."""

    def check_activity(self, service_url: str | None, channel_id: str | None) -> None:
        """:raises AuthenticationError: the ``serviceUrl`` claim differs from the activity's, or the
        key is not endorsed for the activity's channel."""
        if self.endorsements is not None and channel_id not in self.endorsements:
            raise AuthenticationError(f"the signing key is not endorsed for channel {channel_id!r}")
        claimed = self.claims.get("serviceUrl") or self.claims.get("serviceurl")
        if not service_url or not isinstance(claimed, str) or _same_url(claimed) != _same_url(service_url):
            raise AuthenticationError("the token's serviceUrl claim does not match the activity's serviceUrl")


class BotConnectorAuth:
    """:raises ConfigError: ``teams.app_id`` is not set."""

    def __init__(self, settings: TeamsSettings, *, timeout_s: float = 10.0) -> None:
        if not settings.app_id:
            raise ConfigError("teams.app_id must be set to authenticate Bot Framework requests")
        self.settings = settings
        self.app_id: str = settings.app_id
        self.timeout_s = timeout_s
        self._jwks: _EndorsedKeyClient | None = None
        self._algorithms: list[str] = ["RS256"]
        self._fetched_at = 0.0
        self._lock = Lock()

    async def verify(self, authorization: str | None) -> ConnectorToken:
        """The request's token, verified (signature, issuer, audience, expiry).

        :raises AuthenticationError: no bearer token, or one that fails any check.
        :raises BackendUnavailableError: the OpenID metadata or the keys cannot be fetched.
        """
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("a Bot Framework token is required: `Authorization: Bearer <jwt>`")
        jwks = await self._key_set()
        try:
            key = await to_thread.run_sync(jwks.get_signing_key_from_jwt, token.strip())
        except jwt.PyJWKClientConnectionError as exc:
            raise BackendUnavailableError(f"the Bot Framework signing keys cannot be fetched: {exc}") from None
        except (jwt.PyJWKClientError, jwt.DecodeError) as exc:
            raise AuthenticationError(f"the token is not signed by a Bot Framework key: {exc}") from None
        try:
            claims: dict[str, Any] = jwt.decode(
                token.strip(), key=key.key, algorithms=self._algorithms, audience=self.app_id,
                issuer=self.settings.issuer, leeway=self.settings.clock_skew_s,
                options={"require": ["exp", "iss", "aud"]})
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"the Bot Framework token is not valid: {exc}") from None
        return ConnectorToken(claims=claims, endorsements=getattr(jwks, "endorsements", {}).get(key.key_id))

    async def _key_set(self) -> _EndorsedKeyClient:
        async with self._lock:
            if self._jwks is None or time.monotonic() - self._fetched_at > _METADATA_TTL_S:
                try:
                    async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                        response = await client.get(self.settings.openid_metadata_url)
                        response.raise_for_status()
                        metadata = response.json()
                except (httpx.HTTPError, ValueError) as exc:
                    raise BackendUnavailableError(
                        f"the Bot Framework OpenID metadata {self.settings.openid_metadata_url} "
                        f"cannot be read: {exc}") from None
                jwks_uri = metadata.get("jwks_uri") if isinstance(metadata, dict) else None
                if not isinstance(jwks_uri, str):
                    raise BackendUnavailableError("the Bot Framework OpenID metadata has no jwks_uri")
                algorithms = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
                self._algorithms = [alg for alg in algorithms if alg.startswith(("RS", "PS", "ES"))] or ["RS256"]
                self._jwks = _EndorsedKeyClient(jwks_uri, cache_keys=True, timeout=int(self.timeout_s))
                self._fetched_at = time.monotonic()
            return self._jwks


def _same_url(url: str) -> str:
    return url.strip().rstrip("/").lower()
