"""How many polls may be in flight at once: AIMD on the event loop's lag (pure; the poller drives it)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AdmissionConfig:
    """Tuning of the admission limit; the defaults suit request timeouts of 0.5 s and more."""

    initial: int = 16
    floor: int = 2
    ceiling: int = 1_000_000
    # A response waits for the loop about as long as the loop lags; kept well under any request
    # timeout, a saturated CPU makes polls wait at the gate (no deadline running) instead of in flight.
    target_lag_s: float = 0.1
    # Lag this small over the last `window_s` means the CPU has room: a binding limit may grow fast.
    calm_lag_s: float = 0.025
    window_s: float = 1.0
    backoff: float = 0.5
    hold_s: float = 0.25


class AdmissionControl:
    """Counts polls in flight and waiting, and moves the limit with the loop lag it is told about.

    Additive increase, multiplicative decrease, as TCP does with its window: lag above the target
    halves what is in flight, once per backlog. While polls wait and the loop is on time, every tick
    adds a slot, or doubles the limit when the loop has been calm for a while (slow or dead devices
    hold slots without using the CPU); while calm, each finished poll that was held back adds one
    too (slow start). Polls are admitted first come, first served.
    """

    def __init__(self, clock: Callable[[], float], config: AdmissionConfig | None = None) -> None:
        self.config = config or AdmissionConfig()
        c = self.config
        if not 1 <= c.floor <= c.ceiling or not 0 < c.backoff < 1 or c.calm_lag_s > c.target_lag_s:
            raise ValueError(f"inconsistent admission config: {c}")
        self._clock = clock
        self._limit = float(min(max(c.initial, c.floor), c.ceiling))
        self.in_flight = 0
        self.queued = 0
        self.decreases = 0  # times the lag cut the limit, for status and benchmarks
        self.max_lag_s = 0.0  # largest lag observed, for status and benchmarks
        self._binding = False  # the limit held a poll back since the last increase
        self._hold_until = float("-inf")
        self._lags: deque[tuple[float, float]] = deque()

    @property
    def limit(self) -> int:
        """Polls that may be in flight right now."""
        return int(self._limit)

    def request(self) -> bool:
        """A poll wants to start: True if it may (now in flight), False if it must queue."""
        if self.queued or self.in_flight >= self.limit:
            self.queued += 1
            self._binding = True
            return False
        self._admit()
        return True

    def grant(self) -> bool:
        """Admit the longest-waiting queued poll if there is room; True if one was admitted."""
        if not self.queued or self.in_flight >= self.limit:
            return False
        self.queued -= 1
        self._admit()
        return True

    def withdraw(self) -> None:
        """A queued poll gave up before it was admitted (its device task was cancelled)."""
        self.queued = max(0, self.queued - 1)

    def finish(self) -> None:
        """A poll in flight ended (any outcome)."""
        self.in_flight = max(0, self.in_flight - 1)
        # Only a limit that held a poll back grows: otherwise nothing says more would help.
        if self._binding and self._recent_lag() <= self.config.calm_lag_s:
            self._grow(1.0)

    def observe_lag(self, lag_s: float) -> None:
        """The loop ran a timer `lag_s` late: cut the limit if too late, grow it if calm and binding."""
        now = self._clock()
        c = self.config
        self.max_lag_s = max(self.max_lag_s, lag_s)
        self._lags.append((now, lag_s))
        while self._lags and self._lags[0][0] < now - c.window_s:
            self._lags.popleft()
        if lag_s > c.target_lag_s:
            # With (almost) nothing in flight the polls did not make the loop late (a slow sink, a
            # collection, another process): cutting would only throttle the next round.
            if now >= self._hold_until and self.in_flight > c.floor:
                # From what is in flight, not from the limit: a limit that grew while slow devices
                # held their slots can be far above the load that made the loop late.
                self._limit = max(float(c.floor), min(self._limit, self.in_flight) * c.backoff)
                self.decreases += 1
                # Polls admitted before the cut still finish and keep the loop late for about as long
                # as it is late now: the same backlog must not cut the limit again.
                self._hold_until = now + max(c.hold_s, lag_s)
            return
        if not self.queued or now < self._hold_until:
            return
        # Polls wait while the loop keeps time: those in flight are waiting for their devices (slow
        # or dead, a shared serial bus), not for the CPU, and must not delay the others for long.
        self._grow(self._limit if self._recent_lag() <= c.calm_lag_s else 1.0)

    def _admit(self) -> None:
        self.in_flight += 1
        if self.in_flight >= self.limit:
            self._binding = True

    def _grow(self, by: float) -> None:
        self._limit = min(float(self.config.ceiling), self._limit + by)
        self._binding = False

    def _recent_lag(self) -> float:
        # The worst of the last window_s: one calm sample right after a late one is not calm yet.
        horizon = self._clock() - self.config.window_s
        return max((lag for t, lag in self._lags if t >= horizon), default=0.0)
