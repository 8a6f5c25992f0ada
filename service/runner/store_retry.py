"""Retrying store calls while the database is away: exponential backoff with jitter."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from service.store import StoreUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class RetryPolicy:
    """How long to wait between attempts: ``initial_s``, doubling up to ``max_s``; each
    delay is drawn from ``[d * (1 - jitter), d]`` so that many writers do not retry in
    step. ``clock`` and ``sleep`` are injectable for tests."""

    initial_s: float = 0.2
    max_s: float = 10.0
    factor: float = 2.0
    jitter: float = 0.5
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def delays(self) -> Iterator[float]:
        """The delays before the 2nd, 3rd, ... attempt (endless)."""
        delay = self.initial_s
        while True:
            yield delay * (1.0 - self.jitter * self.rng.random())
            delay = min(delay * self.factor, self.max_s)


def call_with_retry(
    fn: Callable[..., T],
    *args: Any,
    give_up_after_s: float = 600,
    policy: RetryPolicy | None = None,
    **kwargs: Any,
) -> T:
    """``fn(*args, **kwargs)``, called again with backoff while it raises StoreUnavailable.

    Other exceptions (InvalidTransition, StudyNotFound, ...) propagate at once. After
    ``give_up_after_s`` seconds of failures the last StoreUnavailable is raised."""
    policy = policy or RetryPolicy()
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", repr(fn))
    deadline = policy.clock() + give_up_after_s
    delays = policy.delays()
    attempt = 0
    while True:
        attempt += 1
        try:
            result = fn(*args, **kwargs)
        except StoreUnavailable as error:
            remaining = deadline - policy.clock()
            if remaining <= 0:
                log.error(
                    "%s: store still unavailable after %d attempts in %.0f s; giving up",
                    name,
                    attempt,
                    give_up_after_s,
                )
                raise
            delay = min(next(delays), remaining)
            log.warning(
                "%s: store unavailable (%s); attempt %d failed, retrying in %.1f s",
                name,
                error,
                attempt,
                delay,
            )
            policy.sleep(delay)
            continue
        if attempt > 1:
            log.info("%s: store reachable again after %d attempts", name, attempt)
        return result
