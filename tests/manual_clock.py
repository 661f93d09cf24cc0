"""An injected clock for tests: time moves only when the test says so (no sleeps)."""

from __future__ import annotations


class Clock:
    """A callable returning the current (float) time, advanced by assigning `t`."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t
