"""One chat request, from admission to its turn record.

Order: validate the question -> take a place in the answer gate (503 when full) -> read the
history of a continued conversation -> start generating on a worker and, meanwhile, find or create
the conversation and write the turn ``pending`` -> record the turn ``answered``, ``failed`` or
``cancelled``. The answer is only stored, and the request only answered, once the pending write has
committed; when that write is refused (unknown conversation, repeated delivery) the answer is
dropped unseen and nothing is stored. A request accepted after the pending write ends with exactly
one finished turn, whether the answer succeeds, fails, times out or the client goes away.

Writing the pending turn beside the answer instead of before it takes most of the write off a
chat's latency where the write waits on the network (PostgreSQL: about 0.6 ms); on SQLite the write
is Python holding the GIL and little is gained (README, "API overhead").
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from typing import Any

import anyio
from anyio import to_thread

from api.answer_runner import AnswerRun
from api.schemas import ChatRequest, ChatResponse, public_citations
from api.state import AppState
from core.db.engine import open_session
from core.db.queries import conversations, turns
from core.db.tables import TurnStatus
from core.errors import SupportbotError
from core.schemas import Answer, ChatTurn
from knowledge.answering import AnswerEvent
from knowledge.retrieval import metadata_filters


class AnswerNotStoredError(RuntimeError):
    """The answer was generated but its turn could not be recorded as answered."""


class ChatTurnRun:
    """A started chat turn. Read :meth:`events` to the end; call :meth:`abandon` when the caller
    leaves early (it is a no-op once the turn is finished)."""

    def __init__(self, state: AppState, tenant_id: str, turn_id: uuid.UUID,
                 answer_run: Callable[[Callable[[Answer, int], None]], AnswerRun]) -> None:
        """:param answer_run: builds the (unstarted) run, given the function that stores its answer."""
        self.state = state
        self.tenant_id = tenant_id
        self._conversation_id: uuid.UUID | None = None
        self.turn_id = turn_id
        self.history: list[ChatTurn] = []
        """What the answer's question is rewritten with, set when it starts."""
        self._finished = False
        # Resolved by start_chat once the pending turn is written (or could not be): the answer's
        # worker waits on it before storing, so an answer never lands on a turn that is not there.
        self._opened: Future[None] = Future()
        self._run = answer_run(self.store_answer)

    async def events(self) -> AsyncIterator[AnswerEvent]:
        """Token events, then the final answer event, after the turn is recorded as answered.

        :raises RequestTimeoutError: the deadline passed (the turn is recorded as failed).
        """
        answer: Answer | None = None
        try:
            async for event in self._run.events():
                if event.kind == "answer":
                    answer = event.answer
                else:
                    yield event
            if answer is None:
                raise RuntimeError("the answer service ended without an answer")
        except AnswerNotStoredError as exc:
            await self._end(TurnStatus.FAILED, str(exc))
            raise
        except SupportbotError as exc:
            await self._end(TurnStatus.FAILED, f"{exc.code}: {exc.message}")
            raise
        except Exception as exc:
            await self._end(TurnStatus.FAILED, f"{type(exc).__name__}: {exc}")
            raise
        self.state.metrics.record_answer(answer, self._run.generated_tokens)
        yield AnswerEvent("answer", answer=answer)

    async def final_answer(self) -> Answer:
        """Read the events to the end and return the answer (the turn is abandoned if this is cancelled)."""
        answer: Answer | None = None
        try:
            async for event in self.events():
                if event.kind == "answer":
                    answer = event.answer
        finally:
            await self.abandon()
        if answer is None:
            raise RuntimeError("the chat run ended without an answer")
        return answer

    def start(self, history: list[ChatTurn]) -> None:
        """Start answering; may be called from any thread.

        :raises RuntimeError: the server is shutting down (the place in the gate is given back)."""
        self.history = history
        self._run.start()

    @property
    def conversation_id(self) -> uuid.UUID:
        """The turn's conversation (known once :func:`start_chat` has returned the run)."""
        if self._conversation_id is None:
            raise RuntimeError("the turn is not written yet")
        return self._conversation_id

    def response(self, answer: Answer) -> ChatResponse:
        return ChatResponse.build(turn_id=self.turn_id, conversation_id=self.conversation_id, answer=answer)

    def opened(self, conversation_id: uuid.UUID) -> None:
        """The pending turn is committed (in ``conversation_id``)."""
        self._conversation_id = conversation_id
        self._opened.set_result(None)

    def not_opened(self, error: BaseException) -> None:
        """The pending turn was not written: the answer is stopped (or never starts) and is not stored."""
        self._finished = True
        self._run.cancel()
        self._opened.set_exception(error)

    async def abandon(self, reason: str = "the client went away before the answer was complete") -> None:
        if self._finished:
            return
        self._run.cancel()
        await self._end(TurnStatus.CANCELLED, reason)

    def store_answer(self, answer: Answer, tokens: int) -> None:
        """Record the turn as answered; runs on the answer's worker thread, before the answer is
        handed to the request (:class:`AnswerRun`'s ``store``), which saves a trip through the thread
        pool per chat. Finished only once stored: when the write fails (database locked, pool
        exhausted) the request sees the error and ends the turn as failed instead, rather than
        leaving it pending with the request gone.

        :raises AnswerNotStoredError: the write failed, or the pending turn was never written.
        """
        try:
            self._opened.result()
            with open_session(self.state.engine) as session:
                turns.answer_turn(session, tenant_id=self.tenant_id, turn_id=self.turn_id, answer=answer,
                                  generated_tokens=tokens,
                                  citations=[c.model_dump() for c in public_citations(answer.citations)])
        except Exception as exc:
            raise AnswerNotStoredError(f"the answer could not be stored: {type(exc).__name__}: {exc}") from exc
        self._finished = True

    async def _end(self, status: TurnStatus, reason: str) -> None:
        if self._finished:
            return
        self._finished = True

        def write() -> None:
            with open_session(self.state.engine) as session:
                turns.end_turn(session, tenant_id=self.tenant_id, turn_id=self.turn_id, status=status, error=reason)

        # Shielded: this also runs while the request is being cancelled (client disconnect).
        with anyio.CancelScope(shield=True):
            await to_thread.run_sync(write)
        self.state.metrics.turns.labels(status.value).inc()


async def start_chat(state: AppState, *, tenant_id: str, request: ChatRequest,
                     history: list[ChatTurn] | None = None, turn_id: uuid.UUID | None = None,
                     stream: bool = False) -> ChatTurnRun:
    """Admit the request, start its answer and write its pending turn; returns once the turn is
    written (the answer may still be running). ``history`` is given by channels that keep the
    conversation elsewhere (a helpdesk ticket thread); it replaces the stored one. ``turn_id`` is
    given by channels whose platform redelivers events: derived from the event, it makes a
    redelivery fail to start (never part of ``ChatRequest``, so API clients cannot pick ids).
    ``stream``: :meth:`ChatTurnRun.events` yields the token events too (otherwise only the answer).

    :raises InvalidInputError: empty or oversized message (nothing stored).
    :raises OverloadedError: the answer queue is full (nothing stored).
    :raises NotFoundError: ``conversation_id`` is not one of the tenant's (nothing stored).
    :raises AlreadyHandledError: a turn with ``turn_id`` exists already (nothing stored).
    """
    service = state.service
    question = service.validate(request.message)
    filters: dict[str, Any] | None = metadata_filters(
        tenant=tenant_id, **(request.filters.model_dump() if request.filters else {}))
    ticket = state.gate.admit()  # from here on owned by the answer run, which gives it back

    def answer_run(store: Callable[[Answer, int], None]) -> AnswerRun:
        return AnswerRun(state.gate, ticket, produce=lambda: service.stream(question, chat.history, filters),
                         timeout_s=state.settings.api.request_timeout_s, tokens=stream, store=store)

    chat = ChatTurnRun(state, tenant_id, turn_id or uuid.uuid4(), answer_run)
    try:
        conversation_id = await to_thread.run_sync(_open_turn, state, chat, request, question, history)
    except BaseException as exc:
        chat.not_opened(exc)
        raise
    chat.opened(conversation_id)
    return chat


def _open_turn(state: AppState, chat: ChatTurnRun, request: ChatRequest, question: str,
               given_history: list[ChatTurn] | None) -> uuid.UUID:
    """Read the history of a continued conversation, start the answer, and write the pending turn
    (and its conversation when it is new, in one transaction) while the answer runs; returns the
    conversation's id. One trip through the thread pool for all three. A fresh ``chat.turn_id``
    cannot collide, so an existing one means a channel's repeated delivery.

    :raises NotFoundError: the continued conversation is not one of the tenant's (nothing started).
    :raises AlreadyHandledError: the turn exists already.
    """
    settings, tenant_id = state.settings, chat.tenant_id
    with open_session(state.engine) as session:
        conversation_id = request.conversation_id
        history: list[ChatTurn] = []
        if conversation_id is not None:
            conversation_id = conversations.get_conversation(session, tenant_id=tenant_id,
                                                             conversation_id=conversation_id).id
            if given_history is None:
                history = conversations.conversation_history(session, tenant_id=tenant_id,
                                                             conversation_id=conversation_id,
                                                             max_messages=settings.answer.history_turns)
        if given_history is not None:
            limit = settings.answer.history_turns
            history = given_history[-limit:] if limit else []
        chat.start(history)
        if conversation_id is None:
            conversation_id = conversations.add_conversation(session, tenant_id=tenant_id, channel=request.channel,
                                                             user_id=request.user_id)
        turns.start_turn(session, tenant_id=tenant_id, conversation_id=conversation_id, question=question,
                         turn_id=chat.turn_id)
    return conversation_id
