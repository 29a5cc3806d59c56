"""The generator interface every answer backend implements, and its errors.

A generator turns chat messages into text, streamed piece by piece. The answer service builds the
messages (system prompt, numbered sources, question) and checks the citations afterwards; the
generator knows nothing about retrieval.

Errors::

    BackendUnavailableError
    └── GenerationError            the generator failed; the answer service falls back to extraction
        ├── GenerationTimeout      no (complete) reply within the configured time
        └── GenerationRejected     the server refused the request (4xx other than 429): fix the request
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from core.errors import BackendUnavailableError


class GenerationError(BackendUnavailableError):
    """The generator could not produce a reply."""


class GenerationTimeout(GenerationError):
    """The generator did not answer in time."""


class GenerationRejected(GenerationError):
    """The server rejected the request as invalid (HTTP 4xx other than 429); retrying will not help."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate. ``adapter`` names a LoRA adapter (TGI: the ``model`` field; local: a
    registry version); ``None`` means the base model or the current default adapter."""

    messages: list[Message]
    max_new_tokens: int = 256
    temperature: float = 0.0
    adapter: str | None = None
    stop: list[str] = field(default_factory=list)
    question: str = ""
    sources: list[str] = field(default_factory=list)
    """The question and the numbered sources' texts (source ``n`` is ``sources[n-1]``), for generators
    that work on them directly (extractive); model generators only read ``messages``."""
    source_headings: list[list[str]] = field(default_factory=list)
    """Each source's heading path (document title first), when known: which section a sentence
    comes from is much of what it means."""
    source_relevance: list[float] = field(default_factory=list)
    """Each source's retrieval cosine to the question, when known."""


@runtime_checkable
class ChatGenerator(Protocol):
    """Implemented by the local, remote and extractive generators."""

    name: str

    def warm_up(self) -> None:
        """Load models / open clients; called once per process, never per request."""

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """Yield the reply in pieces as they are produced.

        :raises GenerationError: (or a subclass) when no reply can be produced.
        """
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this generator's context window (an estimate is allowed)."""
        ...

    @property
    def context_window(self) -> int:
        """Maximum prompt + reply tokens."""
        ...

    @property
    def adapter_version(self) -> str | None:
        """The adapter in use, or ``None`` for the base model."""
        ...


def generate_text(generator: ChatGenerator, request: GenerationRequest) -> str:
    """The whole reply as one string."""
    return "".join(generator.stream(request))
