"""Door state derived from a bare contact, the REX input and access-granted events (pure, injected clock).

Most machine-room doors reach the monitor as a reed switch on an environmental monitor, which has no
notion of "forced" or "held" (reference devices.md §4). We derive them: *forced* = opened without an
access grant or request-to-exit in the window before the opening; *held open* = open longer than N s.
Timestamps are plain seconds on one clock (epoch or monotonic, the caller's choice, used consistently).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DoorState = Literal["closed", "open", "forced_open", "held_open", "unknown"]

DOOR_STATES: tuple[DoorState, ...] = ("closed", "open", "forced_open", "held_open", "unknown")

# Bounded memory: a panel replaying its whole event log must not grow the tracker without limit.
_MAX_AUTH_EVENTS = 64


@dataclass(frozen=True, slots=True)
class DoorStatus:
    """The derived state of one door after an update, with when the current opening began."""

    state: DoorState
    open_since: float | None
    reason: str


class DoorTracker:
    """Turns contact / REX samples and access-granted events of one door into a DoorStatus."""

    def __init__(
        self,
        held_open_after_s: float,
        access_grant_window_s: float,
        *,
        grant_skew_s: float = 2.0,
        reopen_grace_s: float = 0.0,
    ) -> None:
        """Thresholds in seconds.

        `grant_skew_s`: a grant stamped up to this long *after* the contact was seen open still
        authorises that opening (panel clock slightly ahead, or the event and the poll in the same
        cycle). `reopen_grace_s`: a reopening this soon after a close continues the previous opening
        (a bouncing reed switch must neither reset the held-open timer nor look like a new forced entry).
        """
        if held_open_after_s <= 0 or access_grant_window_s < 0 or grant_skew_s < 0 or reopen_grace_s < 0:
            raise ValueError("held_open_after_s must be > 0 and the windows >= 0")
        self.held_open_after_s = held_open_after_s
        self.access_grant_window_s = access_grant_window_s
        self.grant_skew_s = grant_skew_s
        self.reopen_grace_s = reopen_grace_s
        self._auth: list[float] = []  # grant and REX times, oldest first
        self._open_since: float | None = None
        self._authorized = False
        self._closed_at: float | None = None
        self._last_opening: tuple[float, bool] | None = None  # (since, authorized) of the latest opening
        self._last_ts: float | None = None
        self._status = DoorStatus("unknown", None, "no contact reading yet")

    @property
    def status(self) -> DoorStatus:
        """The status returned by the last update (or by a late grant that re-classified it)."""
        return self._status

    def note_access_granted(self, ts: float) -> None:
        """Record an access-granted event (card, PIN, remote open) from the panel or a trap."""
        self._remember(ts)
        self._late_authorization(ts, self._last_ts if self._last_ts is not None else ts)

    def update(self, ts: float, door_open: bool | None, rex: bool | None) -> DoorStatus:
        """Feed one sample of the contact (None = unavailable) and REX input; return the derived state."""
        self._follow_clock(ts)
        if rex:
            self._remember(ts)
            # REX seen at the poll right after the opening (released before the contact was read is
            # missed anyway); a REX pressed later while the door stands open changes nothing.
            self._late_authorization(ts, ts)
        if door_open is None:
            # Keep the opening being tracked: a sensor dropout must not reset the held-open timer
            # or launder a forced opening.
            self._status = DoorStatus("unknown", self._open_since, "door contact unavailable")
            return self._status
        if not door_open:
            if self._open_since is not None:
                self._closed_at = ts
            self._open_since = None
            self._authorized = False
            self._status = DoorStatus("closed", None, "contact closed")
            return self._status
        if self._open_since is None:
            self._start_opening(ts)
        self._status = self._open_status(ts)
        return self._status

    def _late_authorization(self, auth_ts: float, now: float) -> None:
        """A grant or REX stamped just before/after the opening re-classifies a 'forced' opening."""
        since = self._open_since
        if since is None or self._authorized or not self._authorizes(auth_ts, since):
            return
        self._authorized = True
        if self._status.state != "unknown":
            self._status = self._open_status(now)

    def _start_opening(self, ts: float) -> None:
        bounce = (
            self.reopen_grace_s > 0
            and self._closed_at is not None
            and 0 <= ts - self._closed_at <= self.reopen_grace_s
        )
        if bounce and self._last_opening is not None:
            self._open_since, self._authorized = self._last_opening
            return
        self._open_since = ts
        self._authorized = any(self._authorizes(a, ts) for a in self._auth)

    def _open_status(self, ts: float) -> DoorStatus:
        since = self._open_since
        if since is None:
            raise RuntimeError("_open_status called while closed")
        self._last_opening = (since, self._authorized)
        if not self._authorized:
            # Forced stays forced however long it is open: the more serious alarm wins.
            return DoorStatus("forced_open", since, "opened without access grant or REX")
        if ts - since >= self.held_open_after_s:
            return DoorStatus("held_open", since, f"open longer than {self.held_open_after_s:g} s")
        return DoorStatus("open", since, "opened after access grant or REX")

    def _authorizes(self, auth_ts: float, opened_ts: float) -> bool:
        return opened_ts - self.access_grant_window_s <= auth_ts <= opened_ts + self.grant_skew_s

    def _remember(self, ts: float) -> None:
        self._auth.append(ts)
        self._auth.sort()
        horizon = (self._last_ts if self._last_ts is not None else ts) - self.access_grant_window_s
        self._auth = [a for a in self._auth if a >= horizon - self.grant_skew_s][-_MAX_AUTH_EVENTS:]

    def _follow_clock(self, ts: float) -> None:
        last = self._last_ts
        self._last_ts = ts
        if last is None or ts >= last:
            return
        # The clock stepped back (NTP, RTC reset). Shift every stored time by the same amount so that
        # durations measured so far are kept and no negative durations or phantom grants appear: the
        # jump itself counts as zero elapsed time.
        delta = ts - last
        self._auth = [a + delta for a in self._auth]
        if self._open_since is not None:
            self._open_since += delta
        if self._closed_at is not None:
            self._closed_at += delta
        if self._last_opening is not None:
            self._last_opening = (self._last_opening[0] + delta, self._last_opening[1])
