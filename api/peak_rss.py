"""Peak resident memory of this process over a block of code.

torch allocates outside Python's allocator, so ``tracemalloc`` does not see model weights or
activations, and ``ru_maxrss`` is the peak of the whole process life. This samples the resident set
size (psutil) in a daemon thread instead.

Usage::

    with PeakRss() as meter:
        train(config)
    meter.peak_mb
"""

from __future__ import annotations

import threading
from types import TracebackType


class PeakRss:
    """The largest RSS seen, in MiB, sampled every ``interval_s`` while the block runs."""

    def __init__(self, interval_s: float = 0.05) -> None:
        import psutil

        self.interval_s = interval_s
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_until_stopped, name="peak-rss", daemon=True)
        self._peak = 0

    @property
    def peak_mb(self) -> float:
        return round(self._peak / 2**20, 1)

    def _sample(self) -> None:
        self._peak = max(self._peak, int(self._process.memory_info().rss))

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> PeakRss:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
