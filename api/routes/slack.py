"""``POST /slack/events``: the Slack app's Events API and interactivity endpoint (mounted only when
Slack is configured). Bolt verifies the signature and answers; see :mod:`bot.channels.slack`."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler

from bot.channels.slack import SlackChannel


def build_router(channel: SlackChannel) -> APIRouter:
    router = APIRouter(tags=["channels"])
    handler = AsyncSlackRequestHandler(channel.app)

    @router.post("/slack/events", summary="Slack events and button clicks (signed by Slack)",
                 response_class=Response, responses={401: {"description": "missing or invalid Slack signature"}})
    async def slack_events(request: Request) -> Response:
        return await handler.handle(request)

    return router
