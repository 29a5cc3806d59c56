"""The remote generator: TGI, or any OpenAI-compatible chat server (vLLM, SGLang), over
``POST /v1/chat/completions`` with ``stream: true``.

Why httpx and not ``huggingface_hub.InferenceClient``: the InferenceClient sends every request through
huggingface_hub's shared session, whose request hook refuses *all* requests when ``HF_HUB_OFFLINE=1``
is set (checked with huggingface_hub 2.4.0: ``OfflineModeIsEnabled`` even for ``http://127.0.0.1``).
Self-hosted, air-gapped deployments set exactly that variable to keep transformers off the Hub, and
so does our test suite; the generator must still reach the deployment's own TGI. It would also keep
each streamed response open until the client is closed, and hide the status and headers we need for
the retry policy. The wire protocol is small enough to speak directly.

The LoRA adapter is chosen per request: TGI reads the ``model`` field as the adapter id (``"tgi"``
means the base model), vLLM as the served model or LoRA name.

Example::

    generator = RemoteGenerator(get_settings().generator)
    generator.warm_up()
    for piece in generator.stream(GenerationRequest([Message("user", "Hello")], adapter="support-v3")):
        print(piece, end="")
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from core.errors import ConfigError
from core.settings import GeneratorSettings
from knowledge.generation.base import GenerationError, GenerationRejected, GenerationRequest, GenerationTimeout
from knowledge.generation.chat_stream import chat_stream_text, error_text
from knowledge.generation.retry import backoff_delay, is_retryable, parse_retry_after

logger = logging.getLogger(__name__)

# The server's tokenizer is unknown here, so token counts are estimated from characters. English BPE
# averages about 4 characters per token, but numbers, code and many other languages take fewer; 3
# errs on the high side, because overestimating only wastes a little context while underestimating
# makes the server reject the prompt as too long.
CHARS_PER_TOKEN = 3


class _ServerBusy(GenerationError):
    """A 429/503 answer: the only failure :meth:`RemoteGenerator.stream` retries."""

    def __init__(self, message: str, retry_after_s: float | None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def chat_completions_url(base_url: str) -> str:
    """The chat endpoint under ``base_url``: ``http://h:8080``, ``http://h:8080/v1`` and the full
    ``.../v1/chat/completions`` all name the same route, as OpenAI clients accept all three."""
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/")
    if not path.endswith("/chat/completions"):
        path += "/chat/completions" if path.endswith("/v1") else "/v1/chat/completions"
    return urlunsplit(parts._replace(path=path))


class RemoteGenerator:
    """A :class:`~knowledge.generation.base.ChatGenerator` that streams from a TGI/OpenAI-compatible server.

    :param settings: the generator settings; ``settings.remote`` names the server and the retry
        policy, ``settings.timeout_s`` bounds each call (retries and waits included).
    :param rng: the source of retry jitter (seed it to make waits reproducible).
    :raises ConfigError: ``settings.remote.url`` is not an http(s) URL.
    """

    name = "remote"

    def __init__(self, settings: GeneratorSettings, *, rng: random.Random | None = None) -> None:
        parts = urlsplit(settings.remote.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"generator.remote.url must be an http(s) URL such as http://tgi:8080, got {settings.remote.url!r}"
            )
        self._settings = settings
        self._remote = settings.remote
        self._url = chat_completions_url(self._remote.url)
        self._rng = rng or random.Random()
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    def warm_up(self) -> None:
        """Open the connection pool (no request is sent: the server may still be starting)."""
        with self._client_lock:
            if self._client is not None:
                return
            headers = {"Accept": "text/event-stream"}
            if self._remote.api_key is not None:
                headers["Authorization"] = f"Bearer {self._remote.api_key.get_secret_value()}"
            self._client = httpx.Client(headers=headers, timeout=self._settings.timeout_s)

    def close(self) -> None:
        """Close the connection pool; a later :meth:`stream` opens a new one."""
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """Yield the reply as the server streams it.

        Busy answers (HTTP 429/503) are retried with jittered exponential backoff, honouring
        ``Retry-After``. A retry can only happen before the first piece was yielded, since busy
        answers arrive as a status line, before any text; so streamed text is never duplicated.

        :raises GenerationRejected: the server refused the request (HTTP 4xx other than 429).
        :raises GenerationTimeout: no complete reply within ``timeout_s``.
        :raises GenerationError: the server failed, could not be reached, stayed busy through every
            retry, or the stream ended before a ``finish_reason``.
        """
        client = self._ready_client()
        payload = self._payload(request)
        deadline = time.monotonic() + self._settings.timeout_s
        retry = 0
        while True:
            try:
                yield from self._attempt(client, payload, deadline)
                return
            except _ServerBusy as busy:
                if retry >= self._remote.max_retries:
                    raise GenerationError(f"{busy} (still busy after {retry} retries)") from busy
                delay = backoff_delay(
                    retry,
                    base_s=self._remote.backoff_base_s,
                    max_s=self._remote.backoff_max_s,
                    rng=self._rng,
                    retry_after_s=busy.retry_after_s,
                )
                if time.monotonic() + delay >= deadline:
                    raise GenerationTimeout(
                        f"{busy} (no time left for a retry within {self._settings.timeout_s:g} s)"
                    ) from busy
                retry += 1
                logger.warning("%s; retry %d/%d in %.2f s", busy, retry, self._remote.max_retries, delay)
                time.sleep(delay)

    def count_tokens(self, text: str) -> int:
        """An estimate (see :data:`CHARS_PER_TOKEN`), rounded up."""
        return -(-len(text) // CHARS_PER_TOKEN)

    @property
    def context_window(self) -> int:
        return self._remote.context_window

    @property
    def adapter_version(self) -> str | None:
        """The default adapter sent when a request names none (requests may override it)."""
        return self._remote.adapter

    def _ready_client(self) -> httpx.Client:
        if self._client is None:
            self.warm_up()
        client = self._client
        if client is None:  # closed by another thread between the two lines above
            raise GenerationError("the remote generator was closed")
        return client

    def _payload(self, request: GenerationRequest) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": request.adapter or self._remote.adapter or self._remote.model,
            "messages": [{"role": message.role, "content": message.content} for message in request.messages],
            "stream": True,
            "max_tokens": request.max_new_tokens,
            # Sent even when 0: TGI's chat route maps temperature 0 to greedy decoding (do_sample=false;
            # router/src/lib.rs, "enable greedy only when temperature is 0"), and so do vLLM and SGLang.
            # Leaving it out would not mean greedy: TGI then samples at its default temperature.
            "temperature": request.temperature,
        }
        if request.stop:
            payload["stop"] = list(request.stop)
        return payload

    def _attempt(self, client: httpx.Client, payload: dict[str, Any], deadline: float) -> Iterator[str]:
        """One request: yields the reply, or raises before yielding anything if the status is not 200."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise GenerationTimeout(f"no reply from {self._url} within {self._settings.timeout_s:g} s")
        streaming = False
        try:
            with client.stream("POST", self._url, json=payload, timeout=remaining) as response:
                self._check_response(response)
                streaming = True
                yield from chat_stream_text(self._until(deadline, response.iter_lines()))
        except httpx.TimeoutException as error:
            raise GenerationTimeout(
                f"no complete reply from {self._url} within {self._settings.timeout_s:g} s"
            ) from error
        except httpx.RequestError as error:  # transport failures, and bodies that cannot be decoded
            if streaming:
                raise GenerationError(f"stream ended early: {error!r}") from error
            raise GenerationError(f"cannot reach {self._url}: {error!r}") from error

    def _until(self, deadline: float, lines: Iterable[str]) -> Iterator[str]:
        """``lines``, cut off at the deadline: httpx's timeout bounds each read, not the whole reply."""
        for line in lines:
            if time.monotonic() > deadline:
                raise GenerationTimeout(
                    f"no complete reply from {self._url} within {self._settings.timeout_s:g} s"
                )
            yield line

    def _check_response(self, response: httpx.Response) -> None:
        """Raise the error an unusable response stands for; return for a 200 event stream."""
        status = response.status_code
        if status == 200:
            content_type = response.headers.get("content-type", "")
            if not content_type.startswith("text/event-stream"):
                raise GenerationError(f"{self._url} answered {content_type!r}, not an event stream")
            return
        response.read()
        try:
            detail = error_text(response.json())
        except json.JSONDecodeError:
            detail = error_text(response.text)
        message = f"HTTP {status} from {self._url}: {detail}"
        if is_retryable(status):
            raise _ServerBusy(message, parse_retry_after(response.headers.get("retry-after")))
        if 400 <= status < 500:
            raise GenerationRejected(message, status=status)
        raise GenerationError(message)
