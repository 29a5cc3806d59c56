"""Request and response bodies of the HTTP API. Requests refuse unknown fields, so a typo (or a
``tenant`` smuggled into the body) is a 422, not silently ignored."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import urlparse

from haystack import Document
from pydantic import BaseModel, ConfigDict, Field

from core.schemas import Answer, Citation, Timings

Channel = Literal["web", "slack", "teams", "assist", "api", "rasa"]
Rating = Literal["up", "down"]
TurnStatusName = Literal["pending", "answered", "failed", "cancelled"]
JobStatusName = Literal["queued", "running", "succeeded", "failed"]
JobKind = Literal["reindex", "train", "retention"]

Item = TypeVar("Item")


class StrictBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KnowledgeFilters(StrictBody):
    """Narrow retrieval to a product, version or language. The tenant always comes from the API key."""

    product: str | None = Field(default=None, max_length=200)
    version: str | None = Field(default=None, max_length=200)
    language: str | None = Field(default=None, max_length=20)


class ChatRequest(StrictBody):
    conversation_id: uuid.UUID | None = Field(default=None, description="continue this conversation; omit to start one")
    message: str = Field(description="the customer's question (length limit: answer.max_question_chars)")
    channel: Channel
    user_id: str | None = Field(default=None, max_length=200)
    filters: KnowledgeFilters | None = None


def public_source(source: str | None) -> str | None:
    """A URL as it is; a file as its name only (server paths are not the caller's business)."""
    if not source:
        return source
    if urlparse(source).scheme in ("http", "https"):
        return source
    return PureWindowsPath(source).name if "\\" in source else PurePosixPath(source).name


def public_citations(citations: list[Citation]) -> list[Citation]:
    return [citation.model_copy(update={"source": public_source(citation.source)}) for citation in citations]


class ChatResponse(BaseModel):
    turn_id: uuid.UUID
    conversation_id: uuid.UUID
    answer: str
    citations: list[Citation]
    grounded: bool
    abstained: bool
    handoff_reason: str | None = None
    generator: str
    adapter_version: str | None = None
    timings: Timings

    @classmethod
    def build(cls, *, turn_id: uuid.UUID, conversation_id: uuid.UUID, answer: Answer) -> ChatResponse:
        return cls(turn_id=turn_id, conversation_id=conversation_id, answer=answer.text,
                   citations=public_citations(answer.citations), grounded=answer.grounded,
                   abstained=answer.abstained, handoff_reason=answer.handoff_reason, generator=answer.generator,
                   adapter_version=answer.adapter_version, timings=answer.timings)


class Page(BaseModel, Generic[Item]):
    items: list[Item]
    total: int
    limit: int
    offset: int


class FeedbackRequest(StrictBody):
    turn_id: uuid.UUID
    rating: Rating
    comment: str | None = Field(default=None, max_length=4000)
    corrected_answer: str | None = Field(default=None, max_length=8000, description="an agent's corrected answer")
    resolved: bool | None = Field(default=None, description="did the answer resolve the customer's problem")


class FeedbackOut(BaseModel):
    turn_id: uuid.UUID
    rating: Rating
    comment: str | None = None
    corrected_answer: str | None = None
    resolved: bool | None = None
    created_at: datetime
    updated_at: datetime


class TurnOut(BaseModel):
    id: uuid.UUID
    status: TurnStatusName
    question: str
    standalone_query: str
    answer: str | None = None
    citations: list[Citation]
    grounded: bool | None = None
    abstained: bool | None = None
    handoff_reason: str | None = None
    generator: str | None = None
    adapter_version: str | None = None
    error: str | None = None
    created_at: datetime
    finished_at: datetime | None = None
    feedback: FeedbackOut | None = None


class ConversationOut(BaseModel):
    id: uuid.UUID
    channel: str
    user_id: str | None = None
    handoff: bool
    turns: int
    created_at: datetime
    updated_at: datetime


class ConversationDetail(BaseModel):
    id: uuid.UUID
    channel: str
    user_id: str | None = None
    handoff: bool
    created_at: datetime
    updated_at: datetime
    turns: list[TurnOut]


class SearchRequest(StrictBody):
    query: str
    top_k: int | None = Field(default=None, ge=1, le=100)
    filters: KnowledgeFilters | None = None


class SearchHit(BaseModel):
    chunk_id: str
    score: float
    title: str
    heading_path: list[str]
    page: int | None = None
    url: str | None = None
    source: str | None = None
    product: str | None = None
    version: str | None = None
    content: str


class SearchResponse(BaseModel):
    results: list[SearchHit]


def search_hit(chunk: Document) -> SearchHit:
    """A retrieved chunk as the API shows it (file sources by name only)."""
    meta = chunk.meta
    page = meta.get("page")
    return SearchHit(chunk_id=chunk.id, score=float(chunk.score or 0.0), title=str(meta.get("title", "")),
                     heading_path=[str(h) for h in meta.get("heading_path") or []],
                     page=int(page) if isinstance(page, int | float) else None, url=meta.get("url"),
                     source=public_source(meta.get("source")), product=meta.get("product"),
                     version=meta.get("version"), content=chunk.content or "")


class HandoffRequest(StrictBody):
    conversation_id: uuid.UUID | None = Field(default=None, description="the conversation to hand over; omit to "
                                              "start one already handed to a person")
    channel: Channel = "web"


class HandoffOut(BaseModel):
    conversation_id: uuid.UUID
    handoff: bool


class AssistMessage(StrictBody):
    role: Literal["user", "assistant"] = Field(description="user: the customer; assistant: the support team")
    content: str = Field(max_length=8000)


class AssistRequest(StrictBody):
    subject: str = Field(max_length=500, description="the ticket's subject")
    body: str = Field(description="the customer's message; subject and body together must fit "
                      "answer.max_question_chars")
    history: list[AssistMessage] | None = Field(default=None, max_length=50,
                                                description="earlier messages of the ticket, oldest first")
    filters: KnowledgeFilters | None = None


class SimilarConversation(BaseModel):
    conversation_id: uuid.UUID
    turn_id: uuid.UUID
    question: str
    answer: str = Field(description="the agent's corrected answer when there is one, else the bot's")
    score: float = Field(description="share of the question's terms it shares, 0-1")


class AssistResponse(BaseModel):
    turn_id: uuid.UUID = Field(description="report the reply the agent sends with POST /v1/assist/{turn_id}/sent")
    conversation_id: uuid.UUID
    draft: str
    citations: list[Citation]
    grounded: bool
    abstained: bool
    handoff_reason: str | None = None
    sources: list[SearchHit] = Field(description="the top passages to read")
    similar: list[SimilarConversation] = Field(description="past well-received answers to similar questions")


class SentReplyRequest(StrictBody):
    final_text: str = Field(min_length=1, max_length=8000, description="the reply as the agent sent it")


class DocumentOut(BaseModel):
    source: str
    product: str | None = None
    version: str | None = None
    content_hash: str
    size_bytes: int
    chunk_count: int
    updated_at: datetime


class UploadResult(BaseModel):
    source: str
    status: Literal["new", "changed", "unchanged", "duplicate", "failed"]
    chunks: int = 0
    reason: str | None = None


class UploadResponse(BaseModel):
    results: list[UploadResult]


class ReindexRequest(StrictBody):
    product: str | None = Field(default=None, max_length=200)
    version: str | None = Field(default=None, max_length=200)
    prune: bool = Field(default=True, description="delete chunks of documents that are gone")


class TrainRequest(StrictBody):
    promote: bool = Field(default=True, description="promote the new adapter if it beats the current one")


class JobOut(BaseModel):
    id: uuid.UUID
    kind: str
    status: JobStatusName
    requested_by: str
    payload: dict[str, Any]
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    attempt: int = Field(default=1, description="1 for the first run; a failed run is retried as attempt + 1")
    counts: dict[str, Any] = Field(default_factory=dict, description="what the run did (files, chunks, rows)")
    not_before: datetime | None = Field(default=None, description="a queued retry waits until then")
    worker: str | None = Field(default=None, description="the worker process that ran it")


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadinessOut(BaseModel):
    status: Literal["ready"]
    checks: dict[str, str]
