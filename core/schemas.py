"""Schemas shared across packages: what an answer is, how it cites, what a conversation turn holds."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Role = Literal["user", "assistant"]


class ChatTurn(BaseModel):
    """One message of the conversation history given to the answer service."""

    role: Role
    content: str


class Citation(BaseModel):
    """A source an answer relies on; ``number`` is the ``[n]`` marker used in the answer text."""

    number: int = Field(ge=1)
    chunk_id: str
    title: str
    heading_path: list[str] = Field(default_factory=list)
    page: int | None = None
    url: str | None = None
    source: str | None = Field(default=None, description="file path or URL the chunk came from")
    snippet: str = Field(description="the quoted passage of the source that supports the answer")


class RetrievedChunk(BaseModel):
    """A retrieved chunk as logged with the turn (what was shown to the generator)."""

    chunk_id: str
    score: float
    title: str = ""


class Timings(BaseModel):
    """Milliseconds spent per stage."""

    retrieval_ms: float = 0.0
    prompt_ms: float = 0.0
    generation_ms: float = 0.0
    check_ms: float = 0.0
    regeneration_ms: float = Field(default=0.0, description="the second generation after an unsupported answer")
    total_ms: float = 0.0
    first_token_ms: float | None = Field(default=None, description="until the first text was streamed: a sentence is released once it is finished and passes "
        "the stream checks (links, prompt leaks)")
    generator_first_token_ms: float | None = Field(
        default=None, description="until the generator produced its first text, before the stream checks "
        "(retrieval and reading the prompt included)")


class Answer(BaseModel):
    """A grounded answer, or an abstention with the reason for handing off to a person."""

    text: str
    citations: list[Citation] = Field(default_factory=list)
    grounded: bool = Field(description="every answer sentence that cites is supported by its source")
    abstained: bool = False
    handoff_reason: str | None = None
    generator: str = Field(description="the generator that produced the final text")
    adapter_version: str | None = None
    question: str = ""
    standalone_query: str = Field(default="", description="the question rewritten without the history")
    retrieved: list[RetrievedChunk] = Field(default_factory=list)
    fallback_reason: str | None = Field(default=None, description="why the configured generator was not used")
    generated_tokens: int = Field(default=0, ge=0, description="tokens the generator wrote for this answer, "
                                  "regeneration included, whether or not the checks let them through")
    timings: Timings = Field(default_factory=Timings)
