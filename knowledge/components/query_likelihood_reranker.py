from __future__ import annotations

import dataclasses
from functools import lru_cache
from pathlib import Path
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict

from core.cpu import MATMUL_PRECISIONS, uses_bf16
from knowledge.generation.smollm2 import LoadedModel, base_model_view, matmul_precision

PASSAGE_PROMPT = "Passage: {passage}\nA question about this passage:"
"""What the question is scored after. Plain text, not the chat template: the model is asked how
likely the question is as a continuation of the passage, not to answer it."""


@component
class QueryLikelihoodReranker:
    """Reorders the best ``candidates`` fused chunks by ``score/max(score) + weight * ql``, where
    ``ql`` is the mean log-probability a causal language model (SmolLM2-135M by default) gives the
    question's tokens after the chunk's text: how likely a reader of the chunk would ask exactly this
    (query likelihood, as in UPR, Sachan et al. 2022). The other chunks keep their order after them.

    Only the candidates whose score is within ``margin`` of the best one (``score/max(score) >= 1 -
    margin``) are read, and none when that leaves only the best: the first chunk changes only when a
    runner-up's question likelihood leads by more than its fused gap divided by ``weight``; on
    squad-dev that lead is under 0.23 nats for 95 % of the pairs (0.43 on the manuals), so at weight
    0.5 a gap over 0.15 is rarely overturned and is left as it is. That skips the model for 60 % of the
    questions and reads a quarter of the chunks, at the same recall@1 on squad-dev and a better one on
    the manuals, where it also stops the model from overturning clear leads (README, "Retrieval
    quality").

    A bi-encoder compares the question and the chunk as two vectors; the language model reads the
    question word by word in the chunk's context, which tells apart neighbouring paragraphs of one
    article that share the question's words. Measured on squad-dev: the chunk ranked first holds the
    gold paragraph more often (README, "Retrieval quality"). It costs one forward pass over
    the chunks within the margin: most questions cost nothing, the others up to 1.5 s on two CPU
    cores without bf16 units (p95 about 1 s), so by default (``retrieval.lm_rerank`` ``auto``) it runs only for
    the local generator's answers, which take seconds anyway.

    The model is a view of the process's base weights (``base_model_view``), shared by every
    reranker of the process: it reads the same tensors as the local generator, without the
    generator's peft adapter, which lives in the generator's own modules.

    Usage::

        reranker = QueryLikelihoodReranker(cache_dir="data/models/smollm2-135m-instruct")
        reranker.warm_up()
        ranked = reranker.run(query="How do I reset it?", documents=fused)["documents"]
    """

    def __init__(self, model_dir: str = "", cache_dir: str = "", weight: float = 0.5, candidates: int = 4,
                 margin: float = 0.15, max_passage_tokens: int = 384, precision: str = "auto") -> None:
        if weight < 0 or margin < 0:
            raise ValueError("weight and margin must be non-negative")
        if candidates < 1 or max_passage_tokens < 16:
            raise ValueError("candidates must be >= 1 and max_passage_tokens >= 16")
        if precision not in MATMUL_PRECISIONS:
            raise ValueError("precision must be auto, float32 or bfloat16")
        self.model_dir = model_dir
        self.cache_dir = cache_dir
        self.weight = weight
        self.candidates = candidates
        self.margin = margin
        self.max_passage_tokens = max_passage_tokens
        self.precision = precision
        self._bf16 = uses_bf16(precision)
        self._loaded: LoadedModel | None = None

    def warm_up(self) -> None:
        if self._loaded is None:
            self._loaded = _shared_scoring_model(self.model_dir, self.cache_dir)

    def question_likelihoods(self, query: str, passages: list[str]) -> list[float]:
        """The mean log-probability of ``query``'s tokens after each passage, in one batch.

        The rows are left-padded, with positions counted from each row's first real token, so that
        every row ends with the question and only the question's logits are computed (the output
        layer over the 49k-token vocabulary is a fifth of the work when computed for every token)."""
        import torch

        self.warm_up()
        assert self._loaded is not None
        tokenizer, model = self._loaded.tokenizer, self._loaded.model
        question = tokenizer(" " + query, add_special_tokens=False).input_ids
        rows = [self._prefix_ids(passage) + question for passage in passages]
        width = max(len(row) for row in rows)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        ids = torch.tensor([[pad] * (width - len(row)) + row for row in rows])
        mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in rows])
        positions = torch.tensor([[0] * (width - len(row)) + list(range(len(row))) for row in rows])
        with torch.inference_mode(), matmul_precision(self._bf16):
            # the logits at position p predict token p + 1: the last len(question) + 1 positions
            # but the final one predict the question's tokens
            logits = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                           logits_to_keep=len(question) + 1).logits[:, :-1]
        targets = torch.tensor(question).expand(len(rows), -1)[..., None]
        predicted = logits.float().log_softmax(-1).gather(2, targets).squeeze(2)
        return [float(row.mean()) for row in predicted]

    def _prefix_ids(self, passage: str) -> list[int]:
        assert self._loaded is not None
        tokenizer = self._loaded.tokenizer
        head = tokenizer(passage, add_special_tokens=False).input_ids[: self.max_passage_tokens]
        return list(tokenizer(PASSAGE_PROMPT.format(passage=tokenizer.decode(head)), add_special_tokens=False).input_ids)

    @component.output_types(documents=list[Document])
    def run(self, query: str, documents: list[Document], top_k: int | None = None) -> dict[str, list[Document]]:
        """:returns: ``documents`` with the candidates within the margin reordered; their ``score`` is the
        combined score (in other units than the fused scores of the rest, which keep their order after
        them), ``meta["query_likelihood"]`` holds ``ql`` and ``meta["fused_score"]`` the score they came
        with; only the first ``top_k`` are returned when it is given."""
        head, rest = self._within_margin(documents)
        if len(head) < 2 or not query.strip():
            return {"documents": documents[:top_k]}
        likelihoods = self.question_likelihoods(query, [doc.content or "" for doc in head])
        top = max(max(doc.score or 0.0 for doc in head), 1e-9)
        combined = [(doc.score or 0.0) / top + self.weight * ql for doc, ql in zip(head, likelihoods, strict=True)]
        order = sorted(range(len(head)), key=lambda i: (-combined[i], i))
        reranked = [dataclasses.replace(head[i], score=combined[i],
                                        meta={**head[i].meta, "query_likelihood": likelihoods[i],
                                              "fused_score": head[i].score})
                    for i in order]
        return {"documents": [*reranked, *rest][:top_k]}

    def _within_margin(self, documents: list[Document]) -> tuple[list[Document], list[Document]]:
        """The leading candidates the model reads (a prefix: fused order is by score) and the rest."""
        head = documents[: self.candidates]
        top = max((doc.score or 0.0 for doc in head), default=0.0)
        floor = top * (1 - self.margin) if top > 0 else float("-inf")
        count = next((i for i, doc in enumerate(head) if (doc.score or 0.0) < floor), len(head))
        return documents[:count], documents[count:]

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, model_dir=self.model_dir, cache_dir=self.cache_dir, weight=self.weight,
                               candidates=self.candidates, margin=self.margin, max_passage_tokens=self.max_passage_tokens,
                               precision=self.precision)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QueryLikelihoodReranker:
        return default_from_dict(cls, data)


@lru_cache(maxsize=2)
def _shared_scoring_model(model_dir: str, cache_dir: str) -> LoadedModel:
    return base_model_view(model_dir, Path(cache_dir))

