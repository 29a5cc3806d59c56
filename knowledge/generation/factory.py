"""Chooses the generator named by the settings (or by the caller)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from core.settings import Settings
from knowledge.generation.base import ChatGenerator

if TYPE_CHECKING:  # imported when built: a process that only runs the local model does not load Haystack
    from knowledge.generation.extractive import ExtractiveGenerator

GeneratorName = Literal["local", "remote", "extractive"]


def build_generator(settings: Settings, name: GeneratorName | None = None) -> ChatGenerator:
    """The generator ``name`` (default ``settings.generator.backend``); models load in ``warm_up()``.
    The local model is shared per process: every caller gets the same loaded weights."""
    backend = name or settings.generator.backend
    if backend == "local":
        from knowledge.generation.local import local_generator_for

        return local_generator_for(settings)
    if backend == "remote":
        from knowledge.generation.remote import RemoteGenerator

        return RemoteGenerator(settings.generator)
    return extractive_generator(settings)


def extractive_generator(settings: Settings) -> ExtractiveGenerator:
    """The extractive generator of the settings (also every generator's fallback)."""
    from knowledge.encoder import encoder_options, shared_encoder
    from knowledge.generation.extractive import ExtractiveGenerator

    answer = settings.answer
    encoder = shared_encoder(**encoder_options(settings)) if extractive_uses_encoder(settings) else None
    return ExtractiveGenerator(max_sentences=answer.extractive_sentences, rank_prior=answer.extractive_rank_prior,
                               semantic_weight=answer.extractive_semantic_weight,
                               section_weight=answer.extractive_section_weight, encoder=encoder,
                               vectors_path=answer_vectors_path(settings))


def extractive_uses_encoder(settings: Settings) -> bool:
    """Whether extractive answers (and every answer's abstention checks) compare texts by meaning."""
    answer = settings.answer
    return bool(answer.extractive_semantic_weight) or answer.max_unmatched_focus < 1 or answer.min_answer_probability > 0


def answer_vectors_path(settings: Settings) -> Path:
    """The file of precomputed answer vectors (:mod:`knowledge.text_vectors`), filled at ingestion."""
    return settings.data_dir / "answer_vectors.sqlite"
