"""What the learning loop needs from ``knowledge`` (the answer prompt, the local model), built here
and handed to ``training``, which may not import ``knowledge``. Used by ``supportbot train`` and
by the worker's scheduled training."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.settings import Settings

if TYPE_CHECKING:
    from training.dataset import PromptRenderer
    from training.evaluate import CitationJudge, Generate


def base_model_dir(settings: Settings) -> Path:
    """The configured model directory, or the SmolLM2 cache (filled from the GGUF on first use)."""
    from knowledge.generation.smollm2 import cache_dir_for, load_base_model

    if settings.generator.local.model_dir:
        return Path(settings.generator.local.model_dir)
    cache_dir = cache_dir_for(settings.data_dir)
    load_base_model("", cache_dir)  # the first load dequantizes the GGUF into the cache
    return cache_dir


def answer_prompt_renderer(settings: Settings, tenant: str) -> PromptRenderer:
    """Renders an example's prompt exactly as the answer service does: the answer prompt template
    with the chunks the turn was shown, looked up by id in the tenant's document store. The store
    and the tokenizer are loaded on the first call (a log with no example needs neither)."""
    from functools import cache

    from haystack import Document

    from knowledge.prompting.answer_prompt import AnswerPrompt
    from training.dataset import RenderedPrompt

    prompt = AnswerPrompt(settings.answer.prompt_version, few_shot=settings.answer.few_shot)
    budget = settings.generator.local.context_window - settings.generator.max_new_tokens

    @cache
    def resources() -> tuple[Any, Any]:
        from knowledge.document_store import build_document_store
        from knowledge.generation.smollm2 import cache_dir_for, load_base_model

        tokenizer = load_base_model(settings.generator.local.model_dir, cache_dir_for(settings.data_dir)).tokenizer
        return build_document_store(settings), tokenizer

    def count_tokens(text: str) -> int:
        return len(resources()[1](text, add_special_tokens=False)["input_ids"])

    def render(question: str, chunk_ids: list[str]) -> RenderedPrompt | None:
        store = resources()[0]
        found: dict[str, Document] = {}
        if chunk_ids:
            filters = {"operator": "AND", "conditions": [
                {"field": "id", "operator": "in", "value": chunk_ids},
                {"field": "meta.tenant", "operator": "==", "value": tenant}]}
            found = {doc.id: doc for doc in store.filter_documents(filters=filters)}
        if any(chunk_id not in found for chunk_id in chunk_ids):
            return None
        built = prompt.build(question, [found[c] for c in chunk_ids], count_tokens=count_tokens,
                             max_prompt_tokens=budget)
        return RenderedPrompt(messages=[{"role": m.role, "content": m.content} for m in built.messages],
                              sources=len(built.documents))

    return render


OFFLINE_CONTEXT_WINDOW = 2048
"""The window the gate's evaluation gives the model. Serving's ``generator.local.context_window`` is a
bound on the wait for the first token; the gate's prompts come rendered (the golden set, the held-out
logged turns) and must be read whole, whatever their length."""


def local_generate(settings: Settings, base_dir: Path, adapter: Path | None) -> Generate:
    """Greedy answers of the local model (with ``adapter`` applied, if any) to prompt messages."""
    from knowledge.generation.base import GenerationRequest, Message
    from knowledge.generation.local import LocalGenerator
    from knowledge.generation.smollm2 import cache_dir_for

    local = settings.generator.local
    generator = LocalGenerator(model_dir=str(base_dir), cache_dir=cache_dir_for(settings.data_dir),
                               adapter_dir=str(adapter or ""), threads=local.threads,
                               context_window=max(local.context_window, OFFLINE_CONTEXT_WINDOW),
                               timeout_s=settings.generator.timeout_s, prefill=local.prefill)

    def generate(messages: list[dict[str, str]]) -> str:
        request = GenerationRequest(messages=[Message(m["role"], m["content"]) for m in messages],  # type: ignore[arg-type]
                                    max_new_tokens=settings.generator.max_new_tokens)
        return "".join(generator.stream(request)).strip()

    return generate


def citation_judge(settings: Settings) -> CitationJudge:
    """The answer pipeline's citation check, sentence by sentence, for the training gate: the
    sources are read back from the example's prompt (the answer prompt's ``<source id="n">``
    fences), a sentence's ``[n]`` markers are the answer pipeline's markers, and source ``n``
    supports the sentence when it holds ``answer.sentence_support`` of its content terms."""
    from knowledge.citations.markers import marker_numbers, strip_markers
    from knowledge.citations.support import MIN_CLAIM_TERMS, content_terms, support
    from knowledge.prompting.answer_prompt import prompt_source_texts
    from knowledge.sentences import split_sentences
    from training.evaluate import SentenceCitations

    threshold = settings.answer.sentence_support

    def judge(messages: list[dict[str, str]], answer: str) -> list[SentenceCitations]:
        sources = prompt_source_texts(messages[-1]["content"]) if messages else []
        judged = []
        for sentence in split_sentences(answer):
            cited = tuple(marker_numbers(sentence))
            terms = content_terms(strip_markers(sentence))
            supported = tuple(n for n in cited if 1 <= n <= len(sources) and support(terms, sources[n - 1]) >= threshold)
            judged.append(SentenceCitations(cited=cited, supported=supported, claim=len(terms) >= MIN_CLAIM_TERMS))
        return judged

    return judge
