"""A "still working" line for long commands outside pytest (make bench,
grade): issue 14 item 7, no multi-minute silent stretches. Standard
library only (grade imports it before anything checks for pytest)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Ticker:
    """Outside pytest (make bench, grade): every ``interval`` seconds, one
    line through ``say`` saying what is still being done (``what()``; None:
    nothing to say), until ``stop``. A daemon thread: it never holds a
    process up."""

    def __init__(self, interval: float, say: Callable[[str], None], what: Callable[[], str | None]) -> None:
        self.interval = interval
        self.say = say
        self.what = what
        self.started = time.monotonic()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="kt-ticker", daemon=True)

    def start(self) -> Ticker:
        if self.interval > 0:
            self.thread.start()
        return self

    def stop(self) -> None:
        self.done.set()

    def _loop(self) -> None:
        while not self.done.wait(self.interval):
            text = self.what()
            if text:
                self.say(f"  [{text}; {time.monotonic() - self.started:.0f} s in]")
