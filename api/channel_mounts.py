"""Mounts the chat channels whose settings are complete: Slack at ``POST /slack/events``, Teams at
``POST /teams/messages``. A channel that is not configured has no route at all."""

from __future__ import annotations

from fastapi import FastAPI

from api.channel_conversations import StateConversations
from api.state import AppState
from core.settings import Settings


def mount_channels(app: FastAPI, settings: Settings) -> None:
    def get_state() -> AppState:
        state: AppState = app.state.supportbot
        return state

    conversations = StateConversations(get_state)
    if settings.slack.enabled:
        from api.routes import slack
        from bot.channels.slack import SlackChannel

        app.include_router(slack.build_router(SlackChannel(settings.slack, conversations)))
    if settings.teams.enabled:
        from api.routes import teams
        from bot.channels.teams import TeamsChannel

        app.include_router(teams.build_router(TeamsChannel(settings.teams, conversations)))
