"""``POST /v1/feedback``: thumbs up/down, a comment, an agent's correction, resolved or not; and
``POST /v1/handoff``: the customer asks for a person. Both are chat widget routes: public keys may
use them: a rating and a comment on the tenant's turns (a correction or ``resolved``, an agent's
judgement that becomes training data, needs a full key), and handoff on the web channel only."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import SessionDep, StateDep, WidgetPrincipalDep
from api.errors import AUTHENTICATED, documented
from api.schemas import FeedbackOut, FeedbackRequest, HandoffOut, HandoffRequest
from core.db.queries.conversations import request_handoff
from core.db.queries.feedback import save_feedback

router = APIRouter(prefix="/v1", tags=["feedback"])


@router.post("/feedback", summary="rate one of the tenant's answered turns (posting again replaces it)",
             responses=documented(*AUTHENTICATED, 404))
def post_feedback(body: FeedbackRequest, principal: WidgetPrincipalDep, session: SessionDep, state: StateDep
                  ) -> FeedbackOut:
    if body.corrected_answer is not None or body.resolved is not None:
        principal.require_full("set corrected_answer or resolved (an agent's judgement, used for training)")
    row = save_feedback(session, tenant_id=principal.tenant_id, turn_id=body.turn_id, rating=body.rating,
                        comment=body.comment, corrected_answer=body.corrected_answer, resolved=body.resolved)
    state.metrics.feedback.labels(body.rating).inc()
    return FeedbackOut.model_validate(row.model_dump())


@router.post("/handoff", summary="hand a conversation to a person (a new one when no conversation_id is given)",
             responses=documented(*AUTHENTICATED, 404))
def post_handoff(body: HandoffRequest, principal: WidgetPrincipalDep, session: SessionDep) -> HandoffOut:
    principal.require_channel(body.channel)
    conversation = request_handoff(session, tenant_id=principal.tenant_id, conversation_id=body.conversation_id,
                                   channel=body.channel, only_channel=principal.conversation_channel)
    return HandoffOut(conversation_id=conversation.id, handoff=conversation.handoff)
