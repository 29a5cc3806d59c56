"""Generator doubles for the API tests (the ChatGenerator protocol, given through create_app)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from knowledge.generation.base import GenerationRequest
from knowledge.generation.extractive import ExtractiveGenerator


class GatedGenerator(ExtractiveGenerator):
    """The extractive answer, but only once ``release`` is set; ``started`` tells when a request
    reached the generator. Streams one token per word so a client can leave mid-answer."""

    name = "gated"

    def __init__(self, wait_s: float = 10.0) -> None:
        super().__init__()
        self.started = threading.Semaphore(0)
        self.release = threading.Event()
        self.closed = threading.Event()
        self.wait_s = wait_s

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        words = "".join(super().stream(request)).split(" ")
        self.started.release()
        try:
            yield words[0]
            self.release.wait(self.wait_s)
            for word in words[1:]:
                yield " " + word
        finally:
            self.closed.set()


class ExplodingGenerator(ExtractiveGenerator):
    """Fails with an error the answer pipeline does not expect (not a GenerationError)."""

    name = "exploding"

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        raise RuntimeError("the generator blew up")
