"""Chooses the generator named by the settings (or by the caller)."""

from __future__ import annotations

from typing import Literal

from core.settings import Settings
from knowledge.generation.base import ChatGenerator
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
    return ExtractiveGenerator(max_sentences=settings.answer.extractive_sentences,
                               rank_prior=settings.answer.extractive_rank_prior)
