"""Bounded, cancellable answer generation.

The answer service is synchronous and CPU- or server-bound. :class:`AnswerGate` runs answers on a
fixed pool of worker threads (``concurrency``) and admits at most ``queue_size`` more waiting
ones; beyond that :meth:`AnswerGate.admit` refuses with :class:`OverloadedError` (503 +
Retry-After) so excess load is shed instead of piling up. :class:`AnswerRun` hands one answer's
events to the event loop as they come and stops the generator when the caller goes away or the
deadline passes (generators stop at their next token when their iterator is closed).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from core.errors import OverloadedError, RequestTimeoutError
from core.schemas import Answer
from knowledge.answering import AnswerEvent


class Ticket:
    """A place in the gate, given back exactly once."""

    def __init__(self, gate: AnswerGate) -> None:
        self._gate = gate
        self._released = False
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self._gate._release()


class AnswerGate:
    """Usage::

        gate = AnswerGate(concurrency=2, queue_size=16, retry_after_s=2)
        ticket = gate.admit()              # OverloadedError when full
        run = AnswerRun(gate, ticket, produce=lambda: service.stream(q), timeout_s=60)
        async for event in run.events(): ...
    """

    def __init__(self, *, concurrency: int, queue_size: int, retry_after_s: float,
                 on_change: Callable[[int], None] | None = None) -> None:
        self.concurrency = concurrency
        self.capacity = concurrency + queue_size
        self.retry_after_s = retry_after_s
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="answer")
        self._admitted = 0
        self._lock = threading.Lock()
        self._on_change = on_change

    @property
    def admitted(self) -> int:
        """Answers running or waiting."""
        return self._admitted

    def admit(self) -> Ticket:
        """:raises OverloadedError: every worker is busy and the queue is full."""
        with self._lock:
            if self._admitted >= self.capacity:
                raise OverloadedError(f"all {self.concurrency} answer workers are busy and "
                                      f"{self.capacity - self.concurrency} requests are waiting; retry later",
                                      self.retry_after_s)
            self._admitted += 1
            admitted = self._admitted
        if self._on_change:
            self._on_change(admitted)
        return Ticket(self)

    def _release(self) -> None:
        with self._lock:
            self._admitted -= 1
            admitted = self._admitted
        if self._on_change:
            self._on_change(admitted)

    def submit(self, work: Callable[[], None]) -> None:
        self._executor.submit(work)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


_DONE = object()


class AnswerRun:
    """One answer computed on the gate's workers and read as async events.

    :param produce: starts the answer; called on a worker thread.
    :param timeout_s: the whole run, waiting for a worker included.
    :param tokens: hand token events over too; a caller that only wants the answer says False, so
        the event loop is woken once, for the answer.
    :param store: called on the worker with the answer and its generated tokens before the answer
        is handed over (to record it without another trip through a thread pool); what it raises is
        handed over instead. Not called once the run is cancelled.
    """

    def __init__(self, gate: AnswerGate, ticket: Ticket, *, produce: Callable[[], Iterator[AnswerEvent]],
                 timeout_s: float, tokens: bool = True, store: Callable[[Answer, int], None] | None = None) -> None:
        self._gate = gate
        self._tokens = tokens
        self._store = store
        self._ticket = ticket
        self._produce = produce
        self._timeout_s = timeout_s
        self._cancel = threading.Event()
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._deadline = self._loop.time() + timeout_s
        self._started = False
        self.generated_tokens = 0

    def start(self) -> None:
        """Queue the answer for a worker; may be called from any thread."""
        self._started = True
        try:
            self._gate.submit(self._work)
        except RuntimeError:  # the executor is shutting down
            self._ticket.release()
            raise

    def cancel(self) -> None:
        """Stop generating at the next token, or skip the answer if no worker has taken it yet (a
        run never started gives its place in the gate back now)."""
        self._cancel.set()
        if not self._started:
            self._ticket.release()

    async def events(self) -> AsyncIterator[AnswerEvent]:
        """:raises RequestTimeoutError: past the deadline; or whatever the answer service raised."""
        while True:
            remaining = self._deadline - self._loop.time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                # wait_for wraps each wait in a new task: only pay for it when there is nothing to take
                item = self._queue.get_nowait() if not self._queue.empty() else \
                    await asyncio.wait_for(self._queue.get(), remaining)
            except TimeoutError:
                self.cancel()
                raise RequestTimeoutError(f"no answer within {self._timeout_s:g} s") from None
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def _work(self) -> None:
        try:
            if self._cancel.is_set():
                return
            iterator = self._produce()
            try:
                for event in iterator:
                    if self._cancel.is_set():
                        break
                    if event.kind == "answer" and event.answer is not None:
                        self.generated_tokens = event.answer.generated_tokens
                        if self._store is not None:
                            self._store(event.answer, self.generated_tokens)
                    elif not self._tokens:
                        continue
                    self._post(event)
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
        except Exception as exc:  # noqa: BLE001 - handed to the request, which records the turn as failed
            self._post(exc)
        finally:
            self._ticket.release()
            self._post(_DONE)

    def _post(self, item: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the event loop is closed: the app stopped and nobody is listening
            self._cancel.set()
