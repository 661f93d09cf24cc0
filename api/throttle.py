"""Login throttling (pure): wrong passwords in a row lock an account for a while; the clock is given."""

from __future__ import annotations

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
