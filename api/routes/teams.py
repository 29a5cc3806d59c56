"""``POST /teams/messages``: Bot Framework activities from Microsoft Teams (mounted only when Teams is
configured). Authenticated, acknowledged with 200, answered afterwards; see :mod:`bot.channels.teams`."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.background import BackgroundTask

from api.errors import ErrorBody, documented
from bot.channels.teams import TeamsChannel


def build_router(channel: TeamsChannel) -> APIRouter:
    router = APIRouter(tags=["channels"])

    @router.post("/teams/messages", summary="Bot Framework activities (JWT from the Bot Connector)",
                 response_class=Response, responses={**documented(422, 503),
                            401: {"model": ErrorBody, "description": "missing or invalid Bot Framework token"}})
    async def teams_messages(request: Request) -> Response:
        activity = await channel.receive(await request.body(), request.headers.get("authorization"))
        return Response(status_code=200, background=BackgroundTask(channel.respond, activity))

    return router
