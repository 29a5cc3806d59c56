"""The agent-assist API: ``POST /v1/assist`` drafts a reply to a ticket (with citations, the top
sources and similar past answers); ``POST /v1/assist/{turn_id}/sent`` records what the agent sent
as the turn's corrected answer, a training signal for the learning loop."""

from __future__ import annotations

import uuid

from anyio import to_thread
from fastapi import APIRouter

from api.chat_flow import start_chat
from api.deps import PrincipalDep, SessionDep, StateDep
from api.errors import AUTHENTICATED, documented
from api.schemas import (
    AssistRequest,
    AssistResponse,
    ChatRequest,
    FeedbackOut,
    SearchHit,
    SentReplyRequest,
    SimilarConversation,
    public_citations,
    search_hit,
)
from api.state import AppState
from bot.similar_conversations import PastTurn, rank_similar
from core.db.engine import open_session
from core.db.queries.feedback import record_sent_reply, well_received_turns
from core.schemas import ChatTurn
from knowledge.retrieval import metadata_filters

router = APIRouter(prefix="/v1/assist", tags=["assist"])

SOURCES = 5
SIMILAR = 3


@router.post("", summary="draft a reply to a ticket, with sources and similar past answers",
             responses=documented(*AUTHENTICATED, 503, 504))
async def assist(body: AssistRequest, principal: PrincipalDep, state: StateDep) -> AssistResponse:
    tenant_id = principal.tenant_id
    question = f"{body.subject.strip()}\n\n{body.body.strip()}".strip()
    history = [ChatTurn(role=m.role, content=m.content) for m in body.history] if body.history is not None else None
    request = ChatRequest(message=question, channel="assist", filters=body.filters)
    run = await start_chat(state, tenant_id=tenant_id, request=request, history=history)
    answer = await run.final_answer()
    labels = body.filters.model_dump() if body.filters else {}
    sources, similar = await to_thread.run_sync(_context, state, tenant_id, answer.standalone_query or question,
                                                labels)
    return AssistResponse(turn_id=run.turn_id, conversation_id=run.conversation_id, draft=answer.text,
                          citations=public_citations(answer.citations), grounded=answer.grounded,
                          abstained=answer.abstained, handoff_reason=answer.handoff_reason,
                          sources=sources, similar=similar)


def _context(state: AppState, tenant_id: str, query: str, labels: dict[str, str | None]
             ) -> tuple[list[SearchHit], list[SimilarConversation]]:
    chunks = state.search.search(query, top_k=SOURCES, filters=metadata_filters(tenant=tenant_id, **labels))
    with open_session(state.engine) as session:
        past = [PastTurn(conversation_id=str(turn.conversation_id), turn_id=str(turn.id), question=turn.question,
                         answer=rating.corrected_answer or turn.answer or "")
                for turn, rating in well_received_turns(session, tenant_id=tenant_id)]
    similar = [SimilarConversation(conversation_id=uuid.UUID(hit.turn.conversation_id),
                                   turn_id=uuid.UUID(hit.turn.turn_id), question=hit.turn.question,
                                   answer=hit.turn.answer, score=hit.score)
               for hit in rank_similar(query, past, limit=SIMILAR)]
    return [search_hit(chunk) for chunk in chunks], similar


@router.post("/{turn_id}/sent", summary="record the reply the agent sent as the turn's corrected answer",
             responses=documented(*AUTHENTICATED, 404))
def sent(turn_id: uuid.UUID, body: SentReplyRequest, principal: PrincipalDep, session: SessionDep) -> FeedbackOut:
    row = record_sent_reply(session, tenant_id=principal.tenant_id, turn_id=turn_id, final_text=body.final_text)
    return FeedbackOut.model_validate(row.model_dump())
