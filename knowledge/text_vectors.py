"""Sentence-encoder vectors of short texts, cached by text: in memory and, given a path, in a SQLite
file that outlives the process.

The extractive answer compares a question with the sentences of its sources (read in their section)
and with the words of those sections. Encoded when first asked for, they cost 100-300 ms on the
first question that reaches a section; the indexing pipeline therefore encodes them when the chunk is
written (:class:`~knowledge.components.answer_vector_precomputer.AnswerVectorPrecomputer`), and the
answer reads them back in about a millisecond.

Entries are keyed by a hash of the encoder's identity (model, runtime, sequence length) and the text,
so a changed model never reads stale vectors, and a text's vector is the same whichever document or
tenant it came from: the file holds no text, and a vector is found only by whoever has its text.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from knowledge.encoder import SentenceEncoder

logger = logging.getLogger(__name__)

MEMORY_ENTRIES = 16384
"""Vectors kept in memory (the same sections answer many questions); about 25 MB at 384 dimensions."""

_LOOKUP_BATCH = 500  # under SQLite's bound-parameter limit


class TextVectors:
    """Unit-length vectors of texts, encoded once.

    Usage::

        vectors = TextVectors(shared_encoder(), Path("data/answer_vectors.sqlite"))
        vectors.precompute(["Factory reset: Press and hold the reset button."])  # at ingestion
        question, sentence = vectors(["How do I reset it?", "Factory reset: Press and hold the reset button."])

    :param encoder: what encodes a text not found (warmed up on first use).
    :param path: the SQLite file; ``None`` keeps the vectors in memory only. A file that cannot be
        read or written is logged once and then left alone: the vectors are encoded again instead.
    :param memory_entries: vectors kept in memory, least recently used dropped first.
    """

    def __init__(self, encoder: SentenceEncoder, path: Path | None = None, *,
                 memory_entries: int = MEMORY_ENTRIES) -> None:
        self.encoder = encoder
        self.path = path
        self.memory_entries = memory_entries
        self._memory: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._file_failed = False
        self._identity = b""

    def __call__(self, texts: list[str]) -> list[np.ndarray]:
        """The vectors of ``texts``, in order; those found neither in memory nor in the file are
        encoded (and stored)."""
        keys = [self._key(text) for text in texts]
        found = self._lookup(keys)
        missing = {key: text for key, text in zip(keys, texts, strict=True) if key not in found}
        if missing:
            found.update(self._encode_and_store(missing))
        return [found[key] for key in keys]

    def precompute(self, texts: Iterable[str]) -> int:
        """Encodes and stores the vectors of ``texts`` not stored yet; returns how many were new."""
        unique = {self._key(text): text for text in texts}
        with self._lock:
            stored = self._stored_keys(list(unique))
        missing = {key: text for key, text in unique.items() if key not in stored}
        if missing:
            self._encode_and_store(missing, remember=False)
        return len(missing)

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _key(self, text: str) -> bytes:
        if not self._identity:
            # blake2b keys are at most 64 bytes: the identity (a path and more) is hashed to fit
            self._identity = hashlib.blake2b(self.encoder.identity.encode()).digest()
        return hashlib.blake2b(text.encode(), key=self._identity, digest_size=16).digest()

    def _lookup(self, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        with self._lock:
            for key in keys:
                vector = self._memory.get(key)
                if vector is not None:
                    self._memory.move_to_end(key)
                    found[key] = vector
            wanted = [key for key in dict.fromkeys(keys) if key not in found]
            if wanted:
                from_file = self._read(wanted)
                found.update(from_file)
                self._remember(from_file)
        return found

    def _encode_and_store(self, missing: dict[bytes, str], *, remember: bool = True) -> dict[bytes, np.ndarray]:
        # encoded outside the lock: other questions keep reading meanwhile
        encoded = dict(zip(missing, np.asarray(self.encoder.encode(list(missing.values())), dtype=np.float32),
                           strict=True))
        with self._lock:
            self._write(encoded)
            if remember:
                self._remember(encoded)
        return encoded

    def _remember(self, vectors: dict[bytes, np.ndarray]) -> None:
        self._memory.update(vectors)
        while len(self._memory) > self.memory_entries:
            self._memory.popitem(last=False)

    def _file(self) -> sqlite3.Connection | None:
        if self.path is None or self._file_failed:
            return None
        if self._connection is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("CREATE TABLE IF NOT EXISTS text_vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL)")
                connection.commit()
            except (OSError, sqlite3.Error) as error:
                self._give_up_file(error)
                return None
            self._connection = connection
        return self._connection

    def _stored_keys(self, keys: list[bytes]) -> set[bytes]:
        return set(self._select(keys, "key"))

    def _read(self, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        size = 4 * self.encoder.dimension
        # a blob of another size (a damaged file) counts as missing and is encoded again
        return {key: np.frombuffer(blob, dtype=np.float32) for key, blob in self._select(keys, "key, vector").items()
                if len(blob) == size}

    def _select(self, keys: list[bytes], columns: str) -> dict[bytes, bytes]:
        connection = self._file()
        if connection is None:
            return {}
        rows: dict[bytes, bytes] = {}
        try:
            for start in range(0, len(keys), _LOOKUP_BATCH):
                batch = keys[start:start + _LOOKUP_BATCH]
                placeholders = ",".join("?" * len(batch))
                for row in connection.execute(f"SELECT {columns} FROM text_vectors WHERE key IN ({placeholders})",
                                              batch):
                    rows[row[0]] = row[-1]
        except sqlite3.Error as error:
            self._give_up_file(error)
            return {}
        return rows

    def _write(self, vectors: dict[bytes, np.ndarray]) -> None:
        connection = self._file()
        if connection is None or not vectors:
            return
        try:
            with connection:
                connection.executemany("INSERT OR REPLACE INTO text_vectors (key, vector) VALUES (?, ?)",
                                       [(key, vector.astype(np.float32).tobytes()) for key, vector in vectors.items()])
        except sqlite3.Error as error:
            self._give_up_file(error)

    def _give_up_file(self, error: Exception) -> None:
        logger.warning("answer vector file %s is not usable (%s); vectors are encoded when needed instead",
                       self.path, error)
        self._file_failed = True
        if self._connection is not None:
            self._connection.close()
            self._connection = None


@lru_cache(maxsize=8)
def shared_text_vectors(encoder: SentenceEncoder, path: Path | None) -> TextVectors:
    """One :class:`TextVectors` per encoder and file in a process: the answers' extractive generator,
    the pipeline's fallback and the ingestion share one memory cache and one connection."""
    return TextVectors(encoder, path)
