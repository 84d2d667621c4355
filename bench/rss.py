"""Peak resident memory of a process while something runs (the benches and the bad-input tests)."""

from __future__ import annotations

import threading
import time

import psutil


class RssWatch(threading.Thread):
    """Resident memory of one process, sampled every 20 ms: the baseline before, the peak during."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.baseline = self.peak = self.process.memory_info().rss
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self) -> RssWatch:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop_event.set()
        self.join(2)

    @property
    def growth_mib(self) -> float:
        return round((self.peak - self.baseline) / 2**20, 1)
