"""Failed logins throttled per client address: a few mistakes are free, then each attempt
waits twice as long as the last (pure logic; the page and the JSON API share one)."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Record:
    failures: int
    last: float


@dataclass
class LoginThrottle:
    """Counts failed logins per client address and says how long it must wait.

    After `free` failures, a client must wait `base` seconds after its next failure, then
    twice that after each further one, up to `cap`; while it waits, its logins are refused
    without the password being looked at. A success, or `forget` seconds without a
    failure, clears its count. At most `max_clients` addresses are remembered (the
    longest quiet go first), so a flood of addresses cannot fill the memory.
    """

    free: int = 5
    base: float = 1.0
    cap: float = 300.0
    forget: float = 900.0
    max_clients: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _clients: OrderedDict[str, _Record] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __len__(self) -> int:
        return len(self._clients)

    def _wait(self, record: _Record) -> float:
        extra = record.failures - self.free
        return 0.0 if extra <= 0 else min(self.cap, self.base * 2 ** (extra - 1))

    def _current(self, client: str, now: float) -> _Record | None:
        record = self._clients.get(client)
        if record is not None and now - record.last > max(self.forget, self._wait(record)):
            del self._clients[client]
            return None
        return record

    def retry_after(self, client: str) -> float:
        """Seconds `client` must wait before its next login is checked (0: now)."""
        with self._lock:
            now = self.clock()
            record = self._current(client, now)
            if record is None:
                return 0.0
            return max(0.0, record.last + self._wait(record) - now)

    def failed(self, client: str) -> None:
        """Record a wrong user name or password from `client`."""
        with self._lock:
            now = self.clock()
            record = self._current(client, now)
            if record is None:
                record = self._clients[client] = _Record(0, now)
            record.failures += 1
            record.last = now
            self._clients.move_to_end(client)
            while len(self._clients) > self.max_clients:
                self._clients.popitem(last=False)

    def succeeded(self, client: str) -> None:
        """`client` logged in: its count starts again."""
        with self._lock:
            self._clients.pop(client, None)
