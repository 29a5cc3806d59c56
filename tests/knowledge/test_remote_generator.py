"""The remote generator against a contract-checked TGI double on a loopback socket, and against a
real TGI/OpenAI-compatible server whenever SUPPORTBOT_TEST_TGI_URL is set."""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Generator, Iterator

import httpx
import pytest

from core.errors import ConfigError
from core.settings import GeneratorSettings, RemoteGeneratorSettings
from knowledge.generation.base import (
    ChatGenerator,
    GenerationError,
    GenerationRejected,
    GenerationRequest,
    GenerationTimeout,
    Message,
    generate_text,
)
from knowledge.generation.chat_stream import chat_stream_text
from knowledge.generation.remote import RemoteGenerator, chat_completions_url
from tests.doubles.tgi_contract import TgiContract
from tests.doubles.tgi_server import Cut, Fail, FakeTgiServer, Reply, Stall, StreamError

QUESTION = GenerationRequest(messages=[Message("system", "Answer from the sources."), Message("user", "Hi?")])


@pytest.fixture
def tgi() -> Iterator[FakeTgiServer]:
    with FakeTgiServer() as server:
        yield server
    assert server.violations == [], "the TGI double saw contract violations"


def make_generator(url: str, *, timeout_s: float = 5.0, **remote: object) -> RemoteGenerator:
    """Tiny backoff waits so that retry tests take milliseconds."""
    options: dict[str, object] = {"url": url, "backoff_base_s": 0.001, "backoff_max_s": 0.01, **remote}
    settings = GeneratorSettings(
        backend="remote", timeout_s=timeout_s, remote=RemoteGeneratorSettings.model_validate(options)
    )
    return RemoteGenerator(settings, rng=random.Random(0))


@pytest.fixture
def generator(tgi: FakeTgiServer) -> Iterator[RemoteGenerator]:
    remote = make_generator(tgi.url, max_retries=2)
    remote.warm_up()
    yield remote
    remote.close()


# ---- the happy path --------------------------------------------------------------------------


def test_is_a_chat_generator_and_cheap_to_build() -> None:
    remote = make_generator("http://127.0.0.1:9")  # nothing listens there: construction sends nothing
    assert isinstance(remote, ChatGenerator)
    assert remote.context_window == 4096
    assert remote.count_tokens("") == 0
    assert remote.count_tokens("abcdefg") == 3  # rounded up: an estimate must not undercount


def test_streams_the_reply_in_pieces(tgi: FakeTgiServer, generator: RemoteGenerator) -> None:
    tgi.script(Reply("The filter sits behind the drip tray. [1]"))
    pieces = list(generator.stream(QUESTION))
    assert len(pieces) > 1
    assert "".join(pieces) == "The filter sits behind the drip tray. [1]"


def test_sends_a_greedy_streaming_chat_request(tgi: FakeTgiServer, generator: RemoteGenerator) -> None:
    request = GenerationRequest(messages=QUESTION.messages, max_new_tokens=64, stop=["\nUser:"])
    generate_text(generator, request)
    (sent,) = tgi.chat_requests
    assert sent.body == {
        "model": "tgi",  # TGI's name for "no adapter"
        "messages": [
            {"role": "system", "content": "Answer from the sources."},
            {"role": "user", "content": "Hi?"},
        ],
        "stream": True,
        "max_tokens": 64,
        "temperature": 0.0,  # TGI: greedy
        "stop": ["\nUser:"],
    }
    assert sent.headers["Accept"] == "text/event-stream"


def test_request_adapter_wins_over_the_default_adapter(tgi: FakeTgiServer) -> None:
    remote = make_generator(tgi.url, adapter="support-v2")
    assert remote.adapter_version == "support-v2"
    generate_text(remote, QUESTION)
    generate_text(remote, GenerationRequest(messages=QUESTION.messages, adapter="support-v3"))
    remote.close()
    assert [request.body["model"] for request in tgi.chat_requests] == ["support-v2", "support-v3"]


def test_api_key_is_sent_as_a_bearer_token(tgi: FakeTgiServer) -> None:
    remote = make_generator(tgi.url, api_key="s3cret")
    generate_text(remote, QUESTION)
    remote.close()
    assert tgi.chat_requests[0].headers["Authorization"] == "Bearer s3cret"


@pytest.mark.parametrize("url", ["localhost:8080", "tgi", "ftp://tgi:8080"])
def test_a_url_that_is_not_http_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match=r"generator\.remote\.url"):
        make_generator(url)


@pytest.mark.parametrize(
    "base", ["http://h:8080", "http://h:8080/", "http://h:8080/v1", "http://h:8080/v1/chat/completions"]
)
def test_every_spelling_of_the_server_url_names_the_chat_route(base: str) -> None:
    assert chat_completions_url(base) == "http://h:8080/v1/chat/completions"


# ---- retries ---------------------------------------------------------------------------------


def test_busy_server_is_retried_until_it_answers(tgi: FakeTgiServer, generator: RemoteGenerator) -> None:
    tgi.script(Fail(429), Fail(503, "Service Unavailable", "unhealthy"), Reply("Finally."))
    assert generate_text(generator, QUESTION) == "Finally."
    assert len(tgi.chat_requests) == 3


def test_retry_after_is_honoured_but_capped(tgi: FakeTgiServer) -> None:
    # base 1 ms would wait at most 1 ms; the server asks for 30 s; the cap is 0.3 s.
    remote = make_generator(tgi.url, backoff_base_s=0.001, backoff_max_s=0.3)
    tgi.script(Fail(429, retry_after="30"), Reply("After the wait."))
    started = time.monotonic()
    assert generate_text(remote, QUESTION) == "After the wait."
    elapsed = time.monotonic() - started
    remote.close()
    assert 0.3 <= elapsed < 3.0
    assert len(tgi.chat_requests) == 2


def test_busy_until_retries_run_out_is_a_generation_error(tgi: FakeTgiServer, generator: RemoteGenerator) -> None:
    tgi.script(*[Fail(503, "Service Unavailable", "unhealthy")] * 3, Reply("never sent"))
    with pytest.raises(GenerationError, match="503") as raised:
        generate_text(generator, QUESTION)
    assert type(raised.value) is GenerationError
    assert len(tgi.chat_requests) == 3  # the first try and max_retries=2 retries


def test_retries_stop_at_the_timeout(tgi: FakeTgiServer) -> None:
    remote = make_generator(tgi.url, timeout_s=0.5, backoff_max_s=8.0, max_retries=5)
    tgi.script(Fail(429, retry_after="5"), Reply("too late"))
    started = time.monotonic()
    with pytest.raises(GenerationTimeout, match="429"):
        generate_text(remote, QUESTION)
    remote.close()
    assert time.monotonic() - started < 1.0  # it did not sleep 5 s to fail afterwards
    assert len(tgi.chat_requests) == 1


# ---- failures that are not retried -----------------------------------------------------------


def test_bad_request_is_rejected_without_retry(tgi: FakeTgiServer, generator: RemoteGenerator) -> None:
    tgi.script(Fail(400, "Adapter support-v9 not found", "validation"))
    with pytest.raises(GenerationRejected, match="Adapter support-v9 not found") as raised:
        generate_text(generator, QUESTION)
    assert raised.value.status == 400
    assert "400" in str(raised.value)
    assert len(tgi.chat_requests) == 1


def test_validation_error_is_rejected_without_retry(tgi: FakeTgiServer, generator: RemoteGenerator) -> None:
    tgi.script(Fail(422, "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096", "validation"))
    with pytest.raises(GenerationRejected, match="must be <= 4096") as raised:
        generate_text(generator, QUESTION)
    assert raised.value.status == 422
    assert len(tgi.chat_requests) == 1


def test_server_error_is_a_generation_error_without_retry(tgi: FakeTgiServer, generator: RemoteGenerator) -> None:
    tgi.script(Fail(500, "Incomplete generation", "incomplete_generation"))
    with pytest.raises(GenerationError, match=r"500.*Incomplete generation") as raised:
        generate_text(generator, QUESTION)
    assert not isinstance(raised.value, GenerationRejected | GenerationTimeout)
    assert len(tgi.chat_requests) == 1


def test_unreachable_server_is_a_generation_error() -> None:
    with httpx.Client() as probe, pytest.raises(httpx.ConnectError):
        probe.get("http://127.0.0.1:9/health")  # discard port: proves nothing listens there
    remote = make_generator("http://127.0.0.1:9")
    with pytest.raises(GenerationError, match="cannot reach"):
        generate_text(remote, QUESTION)
    remote.close()


def test_stall_before_the_reply_is_a_timeout(tgi: FakeTgiServer) -> None:
    remote = make_generator(tgi.url, timeout_s=0.3)
    tgi.script(Stall(10))
    started = time.monotonic()
    with pytest.raises(GenerationTimeout):
        generate_text(remote, QUESTION)
    remote.close()
    assert time.monotonic() - started < 3.0
    assert len(tgi.chat_requests) == 1


def test_stall_in_the_middle_of_the_stream_is_a_timeout(tgi: FakeTgiServer) -> None:
    remote = make_generator(tgi.url, timeout_s=0.3)
    tgi.script(Stall(10, after_chunks=2, text="one two three four"))
    received: list[str] = []
    with pytest.raises(GenerationTimeout):
        received.extend(remote.stream(QUESTION))
    remote.close()
    assert "".join(received) == "one two "
    assert len(tgi.chat_requests) == 1


def test_cut_stream_ended_early(tgi: FakeTgiServer, generator: RemoteGenerator) -> None:
    tgi.script(Cut("one two three four", after_chunks=2))
    received: list[str] = []
    with pytest.raises(GenerationError, match="stream ended early"):
        received.extend(generator.stream(QUESTION))
    assert "".join(received) == "one two "
    assert len(tgi.chat_requests) == 1  # text was already streamed: never retried


def test_error_event_in_the_stream_is_a_generation_error(tgi: FakeTgiServer, generator: RemoteGenerator) -> None:
    tgi.script(StreamError("CUDA out of memory", "generation", text="one two", after_chunks=1))
    with pytest.raises(GenerationError, match="CUDA out of memory"):
        generate_text(generator, QUESTION)


def test_abandoned_stream_leaves_the_client_usable(tgi: FakeTgiServer, generator: RemoteGenerator) -> None:
    tgi.script(Reply("one two three four"), Reply("again"))
    pieces = generator.stream(QUESTION)
    assert isinstance(pieces, Generator)
    assert next(pieces) == "one "
    pieces.close()  # the caller stopped reading (e.g. the user left): the response is released
    assert generate_text(generator, QUESTION) == "again"


# ---- the stream reader on plain lines --------------------------------------------------------


def _event(content: str, finish: str | None = None) -> str:
    return "data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]})


def test_stream_reader_skips_comments_blank_lines_and_usage_chunks() -> None:
    lines = [": keep-alive", "", _event("Hel"), _event("lo", "stop"), 'data: {"choices": [], "usage": {}}', "data: [DONE]"]
    assert list(chat_stream_text(lines)) == ["Hel", "lo"]


def test_stream_reader_needs_a_finish_reason() -> None:
    with pytest.raises(GenerationError, match="stream ended early"):
        list(chat_stream_text([_event("Hel"), "data: [DONE]"]))


def test_stream_reader_rejects_garbage() -> None:
    with pytest.raises(GenerationError, match="not JSON"):
        list(chat_stream_text(["data: {oops"]))


def test_stream_reader_maps_openai_style_errors() -> None:
    with pytest.raises(GenerationError, match="model overloaded"):
        list(chat_stream_text(['data: {"error": {"message": "model overloaded", "type": "server_error"}}']))
    with pytest.raises(GenerationRejected, match="too long"):
        list(chat_stream_text(['data: {"error": "prompt too long", "error_type": "validation"}']))


# ---- the double itself -----------------------------------------------------------------------


def test_double_rejects_a_request_that_breaks_the_contract(tgi: FakeTgiServer) -> None:
    response = httpx.post(
        f"{tgi.url}/v1/chat/completions", json={"messages": "hi", "temperature": "hot", "stream": True}
    )
    assert response.status_code == 422
    assert response.json()["error_type"] == "validation"
    violations = tgi.take_violations()
    assert any("'hi' is not of type 'array'" in violation for violation in violations)
    assert any("'hot' is not of type 'number'" in violation for violation in violations)


def test_double_contract_catches_a_malformed_chunk() -> None:
    chunk_without_role = {"id": "", "created": 0, "model": "m", "system_fingerprint": "",
                          "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]}
    assert TgiContract.load().violations("ChatCompletionChunk", chunk_without_role)
    assert TgiContract.load().violations("ErrorResponse", {"error": "no type"})


def test_double_serves_health_info_and_non_streaming_replies(tgi: FakeTgiServer) -> None:
    tgi.script(Reply("Plain JSON."))
    assert httpx.get(f"{tgi.url}/health").status_code == 200
    assert httpx.get(f"{tgi.url}/info").json()["max_stop_sequences"] == 4
    reply = httpx.post(f"{tgi.url}/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
    assert reply.json()["choices"][0]["message"]["content"] == "Plain JSON."


# ---- a real server ---------------------------------------------------------------------------

TGI_URL = os.environ.get("SUPPORTBOT_TEST_TGI_URL")
# "tgi" is TGI's base model; vLLM and SGLang want the served model's name instead.
TGI_MODEL = os.environ.get("SUPPORTBOT_TEST_TGI_MODEL", "tgi")


@pytest.mark.integration
@pytest.mark.skipif(not TGI_URL, reason="SUPPORTBOT_TEST_TGI_URL is not set: no TGI server")
def test_real_server_streams_a_greedy_reply() -> None:
    assert TGI_URL is not None
    remote = make_generator(
        TGI_URL, timeout_s=120.0, model=TGI_MODEL, max_retries=3, backoff_base_s=0.5, backoff_max_s=8.0
    )
    remote.warm_up()
    request = GenerationRequest(
        messages=[Message("user", "Reply with the single word: yes")], max_new_tokens=8, temperature=0.0
    )
    first = generate_text(remote, request)
    second = generate_text(remote, request)
    remote.close()
    assert first.strip()
    assert first == second  # temperature 0 really is greedy on the server
