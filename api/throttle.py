"""Login throttling (pure, the clock is given): wrong passwords in a row lock an account for a while, and
too many failed logins from one client address in a sliding window make that address wait."""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from siteconfig.api_config import LoginThrottle


@dataclass(frozen=True, slots=True)
class LoginState:
    """An account's failed logins in a row and the end of its lock-out (None: not locked)."""

    failures: int = 0
    locked_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class FailureOutcome:
    """The state after a wrong password, and whether this failure started a lock-out."""

    state: LoginState
    locked_now: bool


def is_locked(state: LoginState, now: datetime) -> bool:
    """True while the lock-out lasts."""
    return state.locked_until is not None and now < state.locked_until


def after_failure(state: LoginState, now: datetime, policy: LoginThrottle) -> FailureOutcome:
    """Count one wrong password; the policy's n-th in a row locks the account for its minutes.

    A lock-out that has ended starts the count afresh, so one more wrong password after it does not
    lock again at once."""
    failures = 0 if state.locked_until is not None and now >= state.locked_until else state.failures
    failures += 1
    if failures >= policy.max_failures:
        until = now + timedelta(minutes=policy.lockout_minutes)
        return FailureOutcome(LoginState(failures, until), True)
    return FailureOutcome(LoginState(failures, None), False)


def after_success() -> LoginState:
    """A correct password clears the count."""
    return LoginState()


class AddressThrottle:
    """Failed logins per client address in a sliding window: the `limit`-th failure within `window`
    makes the address wait (429) until its oldest failure in the window ages out.

    Held in memory: at most `capacity` addresses, the least recently failing forgotten first, and at
    most `limit` times per address, so a flood from many addresses costs bounded memory. A success does
    not clear an address's count: one valid account must not reset the guessing of others."""

    def __init__(self, limit: int, window: timedelta, capacity: int) -> None:
        self.limit, self.window, self.capacity = limit, window, capacity
        self._failures: OrderedDict[str, deque[datetime]] = OrderedDict()

    @classmethod
    def of(cls, policy: LoginThrottle) -> AddressThrottle:
        """The throttle a site's `api.login` asks for."""
        window = timedelta(minutes=policy.address_window_minutes)
        return cls(policy.address_failures, window, policy.address_memory)

    def _recent(self, address: str, now: datetime) -> deque[datetime] | None:
        times = self._failures.get(address)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[address]
            return None
        return times

    def retry_after(self, address: str, now: datetime) -> float | None:
        """Seconds `address` must wait before its next login, or None when it may try now."""
        times = self._recent(address, now)
        if times is None or len(times) < self.limit:
            return None
        return max(1.0, (times[0] + self.window - now).total_seconds())

    def failed(self, address: str, now: datetime) -> bool:
        """Count one failed login from `address`; True when this failure makes it wait."""
        times = self._recent(address, now)
        if times is None:
            times = self._failures[address] = deque(maxlen=self.limit)
        times.append(now)
        self._failures.move_to_end(address)
        while len(self._failures) > self.capacity:
            self._failures.popitem(last=False)
        return len(times) >= self.limit

    def __len__(self) -> int:
        """Addresses held now."""
        return len(self._failures)
