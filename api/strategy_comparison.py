"""``supportbot eval strategies``: the four ways to adapt the model (DESIGN.md) measured on the
same held-out questions: prompt-only, RAG, LoRA and LoRA + RAG, accuracy and cost side by side.

1. The data set's questions are split by group (:func:`training.group_split.split_by_group`).
2. One LoRA adapter is trained on the answerable training questions, each with its gold passage,
   cut to the sentences around the answer, as the one source and the gold answer citing it as the
   target (:mod:`training.gold_examples`), in the answer pipeline's own prompt.
3. The answerable test questions are answered by the local model through the answer pipeline
   (:func:`knowledge.evaluation.answer_eval.run_generator`) over a fresh index of the whole corpus:
   without sources (prompt-only, lora) or with hybrid retrieval and citations (rag, lora+rag), by
   the base model or with the adapter.

Imports ``knowledge`` and ``training``, so it lives here, with the processes that may use both.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.settings import Settings
from knowledge.evaluation.dataset import EvalDataset, Question

if TYPE_CHECKING:
    from training.gold_examples import PassageRenderer

logger = logging.getLogger(__name__)

STRATEGIES = ("prompt-only", "rag", "lora", "lora+rag")
METRICS = ("rouge_l", "bleu", "token_f1", "citation_precision", "p50_ms")


@dataclass(frozen=True)
class StrategyOptions:
    """What ``supportbot eval strategies`` takes besides the data set."""

    train_fraction: float = 0.7
    seed: int = 0
    train_questions: int | None = None
    """keep at most this many training questions (the first of the seeded split)"""
    test_questions: int | None = 30
    """score at most this many held-out questions: four strategies answer each (see the README for timings)"""
    context_words: int = 60
    """words of the gold passage kept around the answer in a training example"""
    max_new_tokens: int = 64
    epochs: float = 1.0
    max_steps: int = -1
    learning_rate: float = 2e-4
    lora_rank: int = 16
    max_seq_length: int = 512
    threads: int = 0
    """torch threads for training and generation (0: settings.generator.local.threads; on a shared two-core
    machine two threads answered three times slower than one)"""


@dataclass(frozen=True)
class HeldOutSplit:
    train: list[Question]
    test: list[Question]


def held_out_split(dataset: EvalDataset, options: StrategyOptions) -> HeldOutSplit:
    """The answerable questions of each side of the group-aware split, capped as ``options`` says.
    Unanswerable questions take part in the split (their groups stay whole) but not in training or
    scoring: the answer metrics need a gold answer."""
    from training.group_split import split_by_group

    train, test = split_by_group(dataset.questions, group_of=lambda q: q.group or q.id,
                                 train_fraction=options.train_fraction, seed=options.seed)
    train = [q for q in train if q.gold_ids and q.answers][: options.train_questions]
    test = [q for q in test if q.gold_ids and q.answers][: options.test_questions]
    return HeldOutSplit(train=train, test=test)


def passage_renderer(settings: Settings, count_tokens: Callable[[str], int]) -> PassageRenderer:
    """Renders a question and its sources with the answer prompt, as :class:`AnswerPipeline` does."""
    from haystack import Document

    from knowledge.prompting.answer_prompt import AnswerPrompt
    from training.gold_examples import SourcePassage

    prompt = AnswerPrompt(settings.answer.prompt_version, few_shot=settings.answer.few_shot,
                          canary=settings.answer.canary)
    budget = settings.generator.local.context_window - settings.generator.max_new_tokens

    def render(question: str, sources: list[SourcePassage]) -> list[dict[str, str]]:
        documents = [Document(content=s.text, meta={"title": s.title.split(" > ")[0],
                                                    "heading_path": [p.strip() for p in s.title.split(" > ")]})
                     for s in sources]
        built = prompt.build(question, documents, count_tokens=count_tokens, max_prompt_tokens=budget)
        return [{"role": m.role, "content": m.content} for m in built.messages]

    return render


def _train_adapter(settings: Settings, dataset: EvalDataset, questions: list[Question], base_dir: Path,
                   work_dir: Path, options: StrategyOptions, threads: int) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from training.config import TrainingConfig
    from training.gold_examples import GoldExample, SourcePassage, gold_example, write_gold_dataset
    from training.lora import train

    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    render = passage_renderer(settings, lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"]))
    corpus = {entry.id: entry for entry in dataset.corpus}
    examples = []
    for question in questions:
        passages = [SourcePassage(corpus[g].title, corpus[g].text) for g in question.gold_ids]
        messages = gold_example(question.question, question.answers, passages, render,
                                context_words=options.context_words)
        if messages is not None:
            examples.append(GoldExample(question.id, question.group or question.id, messages))
    dataset_dir = write_gold_dataset(examples, work_dir / "datasets")
    config = TrainingConfig(base_model_dir=str(base_dir), dataset_dir=str(dataset_dir),
                            output_dir=str(work_dir / "adapter"), lora_rank=options.lora_rank,
                            lora_alpha=2 * options.lora_rank, max_seq_length=options.max_seq_length, packing=True,
                            learning_rate=options.learning_rate, num_epochs=options.epochs,
                            max_steps=options.max_steps, seed=options.seed, threads=threads,
                            logging_steps=10)
    result = train(config)
    metrics = dict(result.manifest["metrics"])
    metrics["output_dir"] = str(result.output_dir)
    metrics["examples"] = len(examples)  # the manifest's train_examples counts packed rows
    del result
    gc.collect()
    return metrics


def compare_strategies(settings: Settings, dataset: EvalDataset, options: StrategyOptions, work_dir: Path, *,
                       progress_bar: bool = True) -> dict[str, Any]:
    """Train once, answer the held-out questions four ways, and return the report.

    :raises InvalidInputError: when a side of the split has no answerable question.
    """
    import torch

    from api.peak_rss import PeakRss
    from core.errors import InvalidInputError
    from jobs.training_inputs import base_model_dir
    from knowledge.evaluation.answer_eval import EvalQuestions, run_generator
    from knowledge.evaluation.retrieval_eval import index_dataset
    from knowledge.generation.local import LocalGenerator
    from knowledge.generation.smollm2 import cache_dir_for

    started = time.perf_counter()
    split = held_out_split(dataset, options)
    if not split.train or not split.test:
        raise InvalidInputError(f"{dataset.name}: the split left {len(split.train)} answerable training and "
                                f"{len(split.test)} answerable test questions; both need at least one")
    threads = options.threads or settings.generator.local.threads
    settings = settings.model_copy(update={"generator": settings.generator.model_copy(update={
        "max_new_tokens": options.max_new_tokens,
        "local": settings.generator.local.model_copy(update={"threads": threads, "adapter_dir": "",
                                                             "adapter_line": ""})})})
    index_started = time.perf_counter()
    store = index_dataset(settings, dataset, progress_bar=progress_bar, answer_vectors=True)
    index_seconds = time.perf_counter() - index_started
    if threads:
        torch.set_num_threads(threads)
    base_dir = base_model_dir(settings)
    questions = EvalQuestions(answerable=split.test, unanswerable=[], dataset=dataset)
    local = settings.generator.local

    def generator(adapter_dir: str) -> LocalGenerator:
        return LocalGenerator(model_dir=str(base_dir), cache_dir=cache_dir_for(settings.data_dir),
                              adapter_dir=adapter_dir, threads=threads, context_window=local.context_window,
                              timeout_s=settings.generator.timeout_s, prefill=local.prefill)

    phase_seconds = {"index": round(index_seconds, 1)}

    def answer(name: str, adapter_dir: str) -> tuple[dict[str, Any], float]:
        phase_started = time.perf_counter()
        with PeakRss() as meter:
            scores = run_generator(settings, store, generator(adapter_dir), questions,
                                   use_retrieval=name.endswith("rag"), name=name, progress_bar=progress_bar)
        gc.collect()
        phase_seconds[name] = round(time.perf_counter() - phase_started, 1)
        return scores, meter.peak_mb

    results: dict[str, dict[str, Any]] = {}
    for name in ("prompt-only", "rag"):
        scores, peak = answer(name, "")
        results[name] = {**{m: scores[m] for m in METRICS}, "trainable_params": 0, "train_seconds": 0.0,
                         "peak_memory_mb": peak}
    phase_started = time.perf_counter()
    with PeakRss() as training_meter:
        training = _train_adapter(settings, dataset, split.train, base_dir, work_dir, options, threads)
    phase_seconds["training"] = round(time.perf_counter() - phase_started, 1)
    for name in ("lora", "lora+rag"):
        scores, peak = answer(name, training["output_dir"])
        results[name] = {**{m: scores[m] for m in METRICS}, "trainable_params": training["trainable_params"],
                         "train_seconds": training["train_seconds"],
                         "peak_memory_mb": max(peak, training_meter.peak_mb)}
    return {"dataset": dataset.name, "n_train": len(split.train), "n_test": len(split.test), "results": results,
            "training": {key: training.get(key) for key in ("examples", "skipped_too_long", "steps",
                                                            "input_tokens_seen", "tokens_per_second", "first_loss",
                                                            "last_loss")}
            | {"context_words": options.context_words, "epochs": options.epochs,
               "threads": torch.get_num_threads()},
            "phase_seconds": phase_seconds, "seconds": round(time.perf_counter() - started, 1)}
