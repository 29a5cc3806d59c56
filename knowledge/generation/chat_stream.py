"""Reading the server-sent events of an OpenAI-compatible ``/v1/chat/completions`` stream (TGI, vLLM,
SGLang) into reply text, kept apart from HTTP so it can be tested on plain lines.

A stream is a series of ``data: {chunk}`` lines, ended by ``data: [DONE]``. The reply is complete only
once a chunk carries a ``finish_reason``: a stream that stops before that (server crash, proxy
timeout, dropped connection) must not be mistaken for a short answer, so it raises instead.

Example::

    lines = ['data: {"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": "stop"}]}',
             "data: [DONE]"]
    list(chat_stream_text(lines))  # -> ["Hi"]
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from knowledge.generation.base import GenerationError, GenerationRejected

_DONE = "[DONE]"
_MAX_ERROR_CHARS = 500


def chat_stream_text(lines: Iterable[str]) -> Iterator[str]:
    """Yield the non-empty content deltas of choice 0, in order.

    :param lines: the decoded lines of the response body.
    :raises GenerationRejected: the server reported a validation error inside the stream.
    :raises GenerationError: the server reported another error, sent something that is not a chunk,
        or the stream ended before a ``finish_reason``.
    """
    finished = False
    for line in lines:
        data = _event_data(line)
        if data is None:
            continue
        if data == _DONE:
            break
        chunk = _decode(data)
        if chunk.get("error") is not None:
            raise _stream_error(chunk)
        for choice in chunk.get("choices") or []:
            # n=1 is all we ask for; anything else would interleave two replies.
            if choice.get("index", 0) != 0:
                continue
            content = (choice.get("delta") or {}).get("content")
            if content:
                yield content
            if choice.get("finish_reason"):
                finished = True
    if not finished:
        raise GenerationError("stream ended early: no finish_reason before the end of the reply")


def error_text(body: Any) -> str:
    """The human-readable error of an error body: TGI's ``{"error": str, "error_type": str}``, the
    OpenAI/vLLM ``{"error": {"message": ...}}``, or failing those the body itself (shortened)."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, str):
            return error[:_MAX_ERROR_CHARS]
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"][:_MAX_ERROR_CHARS]
        if isinstance(body.get("message"), str):
            return body["message"][:_MAX_ERROR_CHARS]
    return str(body)[:_MAX_ERROR_CHARS]


def _event_data(line: str) -> str | None:
    """The payload of a ``data:`` line; ``None`` for blank lines, comments and other SSE fields."""
    if not line.startswith("data:"):
        return None
    return line[len("data:") :].strip()


def _decode(data: str) -> dict[str, Any]:
    try:
        chunk = json.loads(data)
    except json.JSONDecodeError as error:
        raise GenerationError(f"malformed stream event (not JSON): {data[:_MAX_ERROR_CHARS]!r}") from error
    if not isinstance(chunk, dict):
        raise GenerationError(f"malformed stream event (not an object): {data[:_MAX_ERROR_CHARS]!r}")
    return chunk


def _stream_error(chunk: dict[str, Any]) -> GenerationError:
    """TGI reports failures after the 200 status as an event; ``validation`` is the caller's fault."""
    kind = chunk.get("error_type")
    message = f"server error during generation ({kind or 'unknown'}): {error_text(chunk)}"
    if kind == "validation":
        return GenerationRejected(message, status=422)
    return GenerationError(message)
