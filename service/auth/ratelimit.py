"""A token bucket per key (a principal): at most ``burst`` at once, refilled steadily."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

MAX_KEYS = 10_000


class RateLimiter:
    """``acquire(key)`` takes one token from the key's bucket and answers 0.0, or answers
    how many seconds until one is available (and takes nothing). Thread-safe.
    ``per_minute == 0`` turns the limit off."""

    def __init__(
        self,
        per_minute: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute < 0 or burst < 1:
            raise ValueError("per_minute must be >= 0 and burst >= 1")
        self.rate = per_minute / 60.0  # tokens per second
        self.burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def acquire(self, key: str) -> float:
        if not self.enabled:
            return 0.0
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                self._remember(key, tokens - 1.0, now)
                return 0.0
            self._remember(key, tokens, now)
            return (1.0 - tokens) / self.rate

    def _remember(self, key: str, tokens: float, now: float) -> None:
        if len(self._buckets) >= MAX_KEYS and key not in self._buckets:
            # Forget buckets that have refilled: they are the same as new ones.
            for old in [
                k
                for k, (tokens_then, then) in self._buckets.items()
                if tokens_then + (now - then) * self.rate >= self.burst
            ]:
                del self._buckets[old]
        self._buckets[key] = (tokens, now)
