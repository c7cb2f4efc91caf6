"""Limits failed sign-ins: at most `attempts` failures per key within a sliding window.

Keys name what is limited, e.g. `ip:203.0.113.7` (one address guessing many accounts) and
`email:ana@example.com` (many addresses guessing one account). A sign-in is blocked while any of
its keys is over the limit. The counts live in this process's memory: a restart forgets them,
and with several processes each counts its own share (the limit per process is then a little
looser; the slow password hash still bounds how fast anyone can guess).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from datetime import timedelta

# Enough keys for every address and account of a busy desk; past it the keys idle longest are
# forgotten first, so a flood of made-up keys cannot grow memory without bound.
MAX_KEYS = 10_000


class LoginLimiter:
    """Failed sign-ins per key in a sliding window; memory bounded to `max_keys` keys."""

    def __init__(
        self,
        attempts: int,
        window: timedelta,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_keys: int = MAX_KEYS,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        if window <= timedelta(0):
            raise ValueError("window must be positive")
        self._attempts = attempts
        self._window = window.total_seconds()
        self._clock = clock
        self._max_keys = max_keys
        # key -> times of its latest failures (only the last `attempts` matter), least recently
        # failed key first.
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        # The web app is one event loop, but a lock keeps the counts right from threads too.
        self._lock = threading.Lock()

    def blocked(self, keys: Sequence[str]) -> float | None:
        """Seconds until a sign-in with these keys is allowed again; None when it is now."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            for key in keys:
                times = self._failures.get(key)
                if times is None or len(times) < self._attempts:
                    continue
                # Allowed again when the oldest of the last `attempts` failures leaves the window.
                wait = max(wait, times[0] + self._window - now)
        return wait if wait > 0 else None

    def failed(self, keys: Sequence[str]) -> None:
        """Count a failed sign-in against each key."""
        now = self._clock()
        with self._lock:
            for key in keys:
                times = self._failures.get(key)
                if times is None:
                    times = self._failures[key] = deque(maxlen=self._attempts)
                else:
                    self._failures.move_to_end(key)
                times.append(now)
            self._prune(now)

    def succeeded(self, keys: Sequence[str]) -> None:
        """Forget the failures of these keys. Pass the account's key only: an address's
        failures should outlive one good sign-in, or a guesser with an account of their own
        could reset its count between guesses at others."""
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)

    def _prune(self, now: float) -> None:
        # Least recently failed first: stop at the first key still inside its window.
        while self._failures:
            key, times = next(iter(self._failures.items()))
            if len(self._failures) <= self._max_keys and times[-1] + self._window > now:
                break
            del self._failures[key]

    def __len__(self) -> int:
        """How many keys have failures remembered (for tests and metrics)."""
        return len(self._failures)
