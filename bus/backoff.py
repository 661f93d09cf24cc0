"""Retry backoff and log rate limits shared by every process that talks to the broker or the database."""

from __future__ import annotations

import time


class RateLimit:
    """At most one log line per `interval_s`; tells how many were suppressed in between."""

    def __init__(self, interval_s: float = 30.0) -> None:
        self.interval_s = interval_s
        self._next = 0.0
        self._suppressed = 0

    def allow(self, now: float | None = None) -> tuple[bool, int]:
        """(log this one?, how many were suppressed since the last logged one)."""
        t = time.monotonic() if now is None else now
        if t >= self._next:
            self._next = t + self.interval_s
            n, self._suppressed = self._suppressed, 0
            return True, n
        self._suppressed += 1
        return False, 0


class Backoff:
    """Exponential retry delay: `first_s`, doubling, capped at `cap_s`; `reset()` after a success."""

    def __init__(self, first_s: float = 0.5, cap_s: float = 30.0) -> None:
        self.first_s = first_s
        self.cap_s = cap_s
        self._next = first_s

    def next_delay(self) -> float:
        """The delay before the next attempt (and double it for the one after)."""
        delay = self._next
        self._next = min(self._next * 2, self.cap_s)
        return delay

    def reset(self) -> None:
        """Back to the first delay."""
        self._next = self.first_s


__all__ = ["Backoff", "RateLimit"]
