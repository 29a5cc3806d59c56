"""What a channel tells the user when a question cannot be answered (plain text; each channel
escapes it for its own markup)."""

from __future__ import annotations

from core.errors import BackendUnavailableError, OverloadedError, RequestTimeoutError, SupportbotError

ATTACHMENT_ONLY_TEXT = ("I can only read questions typed as text, not files or images. "
                        "Please type your question (you can paste the text of an error message).")
"""The reply to a message that carries attachments but no text: nothing is stored for it."""


def failure_text(error: SupportbotError) -> str:
    """Usage::

        failure_text(OverloadedError("queue full", 2))  # -> "Sorry, I can't answer right now ..."
    """
    if isinstance(error, OverloadedError):
        return "Sorry, I can't answer right now because too many questions are waiting. Please ask again in a minute."
    if isinstance(error, RequestTimeoutError):
        return "Sorry, finding the answer took too long. Please ask again, or ask to talk to a person."
    if isinstance(error, BackendUnavailableError):
        return "Sorry, the knowledge base is unavailable right now. Please try again later."
    return f"Sorry, I can't answer that: {error.message}"
