"""When each device is polled next: fixed cadence, start-phase jitter, backoff while dead (pure)."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(slots=True)
class PollSchedule:
    """Cadence of one device on a fixed grid, so a slow poll never makes later polls drift.

    Jitter is applied once, as a random start phase, so a hundred devices with the same interval do
    not all fire in the same millisecond; after that the grid is exact. While a device is failing the
    gap doubles per consecutive failure up to `backoff_max_s`, then snaps back to the grid.
    """

    interval_s: float
    backoff_max_s: float
    next_due: float = 0.0
    failures: int = 0

    @classmethod
    def start(
        cls, now: float, interval_s: float, jitter_pct: float, backoff_max_s: float, rng: random.Random
    ) -> PollSchedule:
        """First poll at `now` plus a random phase within jitter_pct of the interval."""
        phase = rng.uniform(0.0, interval_s * jitter_pct / 100.0)
        return cls(interval_s=interval_s, backoff_max_s=max(backoff_max_s, interval_s), next_due=now + phase)

    def after_success(self, now: float) -> float:
        """Record a good poll and return when the next one is due."""
        self.failures = 0
        self.next_due = self._next_grid_point(now)
        return self.next_due

    def after_failure(self, now: float) -> float:
        """Record a failed poll and return when to try again (exponential backoff)."""
        self.failures += 1
        if self.failures == 1:
            self.next_due = self._next_grid_point(now)
        else:
            delay = min(self.interval_s * 2 ** (self.failures - 1), self.backoff_max_s)
            self.next_due = now + delay
        return self.next_due

    def _next_grid_point(self, now: float) -> float:
        # Skip grid points already missed (a poll that overran) instead of firing them in a burst.
        due = self.next_due + self.interval_s
        if due <= now:
            missed = int((now - self.next_due) // self.interval_s)
            due = self.next_due + (missed + 1) * self.interval_s
        return due
