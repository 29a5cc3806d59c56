"""The Rasa action server: rasa-sdk actions that answer, take feedback and hand off through the
supportbot API over HTTP (``supportbot actions``; or ``rasa run actions --actions bot.rasa_actions``)."""

from bot.rasa_actions.actions import ActionSupportbotAnswer, ActionSupportbotFeedback, ActionSupportbotHandoff

__all__ = ["ActionSupportbotAnswer", "ActionSupportbotFeedback", "ActionSupportbotHandoff"]
