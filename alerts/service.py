"""The alert service: a thin I/O shell around the pure engine and lifecycle, over the records database.

`ingest(inputs, now)` does, in ONE transaction: load the engine state, `evaluate`, `lifecycle.decide`,
write alerts, history, deliveries (the notification outbox) and the new engine state. A crash before
the commit loses nothing and sends nothing; after it, a replay of the same inputs is ignored by the
engine (not newer than what it saw) and by the lifecycle (an alert already firing is not new), so a
restart neither fires again nor forgets. `tick(now)` is ingest without inputs: hold-for, staleness,
group waits and escalation reminders advance with the clock. Channels take due deliveries and report
each try with `record_attempt`: exponential backoff with a cap, and a permanent failure stays visible.
What a channel's rate limit holds back is folded into a summary with `record_summarised` (the folded
deliveries are settled by it, the summary is a new delivery) and `sent_times` gives each channel's
recent sends, so a restarted process keeps the budget it had spent.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, sessionmaker

from alerts.engine import AlertEvent, EngineState, RuleIndex, evaluate
from alerts.inputs import Input
from alerts.lifecycle import (
    AlertView,
    HistoryEntry,
    NotificationPlan,
    Policy,
    RetryPolicy,
    SilenceKind,
    decide,
)
from alerts.notify.base import DeliveryError, Notification
from alerts.render import TAIPEI, notification_from_json, notification_json, render
from alerts.store import (
    Alert,
    AlertStore,
    Delivery,
    DeliveryAttempt,
    Silence,
    alert_view,
)
from records.audit import Actor, append
from siteconfig.alert_rules import AnyRule, RuleSet

log = logging.getLogger(__name__)

ERROR_MAX = 1000
# The outbox kind of a rate-limit summary (alerts.notify.summarise): sent even when the channel's
# budget is spent, never summarised again. Its notification's kind is "summary".
LIMIT_SUMMARY = "limit_summary"
# Credentials a library might echo back in an error: user:password@ in URLs, token-like parameters.
_URL_LOGIN = re.compile(r"(?i)([a-z][a-z0-9+.-]*://)[^/\s@]+@")
_SECRET_PARAM = re.compile(
    r"(?i)\b(token|access_token|key|apikey|api_key|secret|password|passwd|pass|sig|signature|auth)=[^&\s]+"
)


def scrub(text: str) -> str:
    """An error text fit to store: logins in URLs and token-like parameters masked, length capped."""
    text = _URL_LOGIN.sub(r"\1***@", text)
    text = _SECRET_PARAM.sub(r"\1=***", text)
    return text if len(text) <= ERROR_MAX else text[: ERROR_MAX - 1] + "…"


@dataclass(frozen=True, slots=True)
class QueuedDelivery:
    """One row of the notification outbox."""

    id: int
    channel: str
    key: str
    alert_keys: tuple[str, ...]
    kind: str
    level: int
    notification: Notification
    status: str
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """One lifecycle event of one alert."""

    key: str
    alert_id: int
    at: datetime
    what: str
    who: str | None
    note: str | None
    id: int = 0  # the history row's id (pages of history go back from one)


@dataclass(frozen=True, slots=True)
class SilenceRecord:
    """A silence or maintenance window as stored."""

    id: int
    kind: str
    matchers: Mapping[str, object]
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    created_at: datetime
    removed_by: str | None
    removed_at: datetime | None


def _delivery(row: Delivery) -> QueuedDelivery:
    return QueuedDelivery(
        id=row.id,
        channel=row.channel,
        key=row.alert_key,
        alert_keys=tuple(row.alert_keys),
        kind=row.kind,
        level=row.level,
        notification=notification_from_json(row.notification),
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        sent_at=row.sent_at,
        last_error=row.last_error,
    )


def _silence(row: Silence) -> SilenceRecord:
    return SilenceRecord(
        row.id, row.kind, dict(row.matchers), row.starts_at, row.ends_at, row.reason, row.created_by,
        row.created_at, row.removed_by, row.removed_at,
    )  # fmt: skip


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _ack_fields(row: Alert) -> dict[str, str | None]:
    return {"acked_by": row.acked_by, "acked_at": _iso(row.acked_at), "ack_note": row.ack_note}


def _silence_fields(row: Silence) -> dict[str, object]:
    return {
        "kind": row.kind, "matchers": dict(row.matchers), "starts_at": _iso(row.starts_at),
        "ends_at": _iso(row.ends_at), "reason": row.reason, "created_by": row.created_by,
        "removed_by": row.removed_by, "removed_at": _iso(row.removed_at),
    }  # fmt: skip


def _check_matchers(matchers: Mapping[str, str | Sequence[str]]) -> dict[str, str | list[str]]:
    if not matchers:
        raise ValueError(
            "a silence needs at least one matcher (a label or 'rule'): none would mute everything"
        )
    out: dict[str, str | list[str]] = {}
    for name, want in matchers.items():
        if isinstance(want, str):
            if not want:
                raise ValueError(f"matcher {name!r} is empty")
            out[name] = want
        else:
            values = list(want)
            if not values or not all(isinstance(v, str) and v for v in values):
                raise ValueError(f"matcher {name!r}: a value or a non-empty list of values")
            out[name] = values
    return out


class AlertService:
    """Alerts over the records database (migrated by records.migrate.upgrade first)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        rules: RuleSet | Sequence[AnyRule] | RuleIndex,
        policy: Policy,
        retry: RetryPolicy | None = None,
        tz: tzinfo = TAIPEI,
        reads: sessionmaker[Session] | None = None,
    ) -> None:
        self._sessions = sessions
        # Sessions for the reads (a web page's list of alerts): records.db.read_only's deferred BEGIN does
        # not queue behind the alerts process writing, as a default BEGIN IMMEDIATE would.
        self._reads = reads if reads is not None else sessions
        self._index = rules if isinstance(rules, RuleIndex) else RuleIndex(rules)
        self._rules: dict[str, AnyRule] = dict(self._index.by_id)
        self.policy = policy
        self.retry = retry if retry is not None else RetryPolicy()
        self._tz = tz

    # -- the clock and the inputs

    def ingest(self, inputs: Iterable[Input], now: datetime) -> list[QueuedDelivery]:
        """Fold `inputs` in at `now`; returns the deliveries created (already stored, pending)."""
        with self._sessions.begin() as session:
            store = AlertStore(session)
            state = self._load_state(store)
            state, events = evaluate(self._index, state, inputs, now)
            out = self._apply(store, events, now)
            store.save_engine_state(state, now)
            return out

    def tick(self, now: datetime) -> list[QueuedDelivery]:
        """Let time alone act: hold-for, staleness, event expiry, group waits, reminders."""
        return self.ingest((), now)

    def _load_state(self, store: AlertStore) -> EngineState | None:
        try:
            state = store.load_engine_state()
        except ValueError as exc:
            # The alerts table still knows what fires: an alert the fresh engine fires again is not new.
            log.warning("alert engine state unreadable, starting afresh: %s", exc)
            return None
        if state is None:
            return None
        known = self._index.by_id
        if any(k[0] not in known for k in state.trackers):  # a rule left the site file
            state = replace(state, trackers={k: v for k, v in state.trackers.items() if k[0] in known})
        return state

    def _apply(self, store: AlertStore, events: Sequence[AlertEvent], now: datetime) -> list[QueuedDelivery]:
        working = store.working_set(e.dedup_key for e in events)
        decision = decide(working, events, store.active_silences(now), self._rules, self.policy, now)
        ids = store.save_alerts(decision.alerts)
        store.add_history(decision.history, ids)
        latest = {a.key: a for a in working}
        latest.update({a.key: a for a in decision.alerts})
        rows = [self._queue(store.session, plan, latest, now) for plan in decision.notifications]
        store.session.flush()
        return [_delivery(r) for group in rows for r in group]

    def _queue(
        self, session: Session, plan: NotificationPlan, alerts: Mapping[str, AlertView], now: datetime
    ) -> list[Delivery]:
        note = render(plan, [alerts[k] for k in plan.keys if k in alerts], self._tz)
        rows = [
            Delivery(
                alert_key=plan.key,
                alert_keys=list(plan.keys),
                channel=channel,
                kind=plan.kind,
                level=plan.level,
                notification=notification_json(note),
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            for channel in plan.channels
        ]
        session.add_all(rows)
        return rows

    # -- people

    def ack(
        self, alert: str | int, by: str, note: str | None, now: datetime, *, actor: Actor | None = None
    ) -> AlertView:
        """Acknowledge an alert (dedup key or id): reminders and escalation stop. KeyError if unknown.
        With `actor`, the audit log gets `alert.ack` in the same transaction (before/after: the ack)."""
        with self._sessions.begin() as session:
            store = AlertStore(session)
            row = store.alert_row(alert)
            if row is None:
                raise KeyError(f"no alert {alert!r}")
            before = _ack_fields(row)
            if row.acked_at is None:
                row.acked_by, row.acked_at, row.ack_note = by, now, note
            store.add_history([HistoryEntry(row.dedup_key, now, "acked", note, by)], {row.dedup_key: row.id})
            if actor is not None:  # a repeated ack is recorded too: the first one stands (before == after)
                after = _ack_fields(row)
                append(session, actor, "alert.ack", "alert", row.dedup_key, before=before, after=after,
                       note=note, at=now)  # fmt: skip
            self._apply(store, [], now)
            return alert_view(row)

    def silence(
        self,
        matchers: Mapping[str, str | Sequence[str]],
        starts: datetime,
        ends: datetime,
        reason: str,
        by: str,
        now: datetime,
        kind: SilenceKind = "silence",
        *,
        actor: Actor | None = None,
    ) -> int:
        """Mute alerts matching every matcher (label → value, glob or list; `rule` → rule id) from
        `starts` to `ends`; kind "maintenance" for a maintenance window. Returns the silence id. With
        `actor`, the audit log gets `alert.silence` (after: the silence; note: the reason) in the same
        transaction."""
        checked = _check_matchers(matchers)
        if ends <= starts:
            raise ValueError("a silence ends after it starts")
        if not reason.strip():
            raise ValueError("a silence needs a reason (it is part of the record)")
        with self._sessions.begin() as session:
            row = Silence(
                kind=kind, matchers=checked, starts_at=starts, ends_at=ends, reason=reason,
                created_by=by, created_at=now,
            )  # fmt: skip
            session.add(row)
            session.flush()
            if actor is not None:
                append(session, actor, "alert.silence", "silence", str(row.id), after=_silence_fields(row),
                       note=reason, at=now)  # fmt: skip
            self._apply(AlertStore(session), [], now)
            return row.id

    def unsilence(self, silence_id: int, by: str, now: datetime, *, actor: Actor | None = None) -> None:
        """End a silence early (kept, marked removed). KeyError if unknown. With `actor`, the audit log
        gets `alert.unsilence` (before/after: the removal) in the same transaction."""
        with self._sessions.begin() as session:
            row = session.get(Silence, silence_id)
            if row is None:
                raise KeyError(f"no silence {silence_id}")
            before = {"removed_by": row.removed_by, "removed_at": _iso(row.removed_at)}
            if row.removed_at is None:
                row.removed_by, row.removed_at = by, now
            if actor is not None:
                after = {"removed_by": row.removed_by, "removed_at": _iso(row.removed_at)}
                append(session, actor, "alert.unsilence", "silence", str(row.id), before=before, after=after,
                       note=row.reason, at=now)  # fmt: skip
            self._apply(AlertStore(session), [], now)

    # -- reading

    def list_open(self) -> list[AlertView]:
        """Firing alerts, oldest first (silenced and inhibited ones too: see `suppressed`)."""
        with self._reads() as session:
            return [alert_view(r) for r in AlertStore(session).open_alerts()]

    def get(self, alert: str | int) -> AlertView | None:
        """One alert by dedup key or id."""
        with self._reads() as session:
            row = AlertStore(session).alert_row(alert)
            return None if row is None else alert_view(row)

    def history(
        self,
        alert: str | int | None = None,
        since: datetime | None = None,
        limit: int = 500,
        *,
        before: int | None = None,
    ) -> list[HistoryRecord]:
        """Lifecycle events, oldest first: of one alert (key or id) or all, since a time, the newest
        `limit` (with `before`: of those older than that history id, for paging back)."""
        with self._reads() as session:
            return [
                HistoryRecord(k, h.alert_id, h.at, h.what, h.who, h.note, h.id)
                for k, h in AlertStore(session).history(alert, since, limit, before=before)
            ]

    def get_silence(self, silence_id: int) -> SilenceRecord | None:
        """One silence or maintenance window by id (ended ones too)."""
        with self._reads() as session:
            row = session.get(Silence, silence_id)
            return None if row is None else _silence(row)

    def label_names(self) -> set[str]:
        """Every label name a stored alert carries (for checking silence matchers)."""
        with self._reads() as session:
            return {name for labels in session.scalars(select(Alert.labels)) for name in labels or {}}

    def silences(self, now: datetime, include_ended: bool = False) -> list[SilenceRecord]:
        """Silences in force or to come at `now` (with include_ended: every one)."""
        with self._reads() as session:
            q = select(Silence).order_by(Silence.id)
            if not include_ended:
                q = q.where(Silence.removed_at.is_(None), Silence.ends_at > now)
            return [_silence(r) for r in session.scalars(q)]

    def deliveries(self, status: str | None = None) -> list[QueuedDelivery]:
        """The outbox, oldest first; of one status (pending, sent, failed) or all."""
        with self._reads() as session:
            q = select(Delivery).order_by(Delivery.id)
            if status is not None:
                q = q.where(Delivery.status == status)
            return [_delivery(r) for r in session.scalars(q)]

    # -- delivery

    def due_deliveries(self, now: datetime, limit: int = 100) -> list[QueuedDelivery]:
        """Pending deliveries whose next attempt is due, oldest first."""
        with self._reads() as session:
            q = (
                select(Delivery)
                .where(Delivery.status == "pending", Delivery.next_attempt_at <= now)
                .order_by(Delivery.next_attempt_at, Delivery.id)
                .limit(limit)
            )
            return [_delivery(r) for r in session.scalars(q)]

    def record_attempt(
        self,
        delivery_id: int,
        ok: bool,
        error: DeliveryError | str | None,
        now: datetime,
        retry_backoff: RetryPolicy | None = None,
    ) -> QueuedDelivery:
        """Record one try: sent; or retried after an exponential, capped backoff; or failed for good
        (DeliveryError(retryable=False), or `max_attempts` tries), which stays visible. The error text is
        scrubbed of logins and tokens before it is stored."""
        retry = retry_backoff if retry_backoff is not None else self.retry
        with self._sessions.begin() as session:
            row = session.get(Delivery, delivery_id)
            if row is None:
                raise KeyError(f"no delivery {delivery_id}")
            if row.status != "pending":
                return _delivery(row)  # a late report of a delivery already settled
            detail = error.detail if isinstance(error, DeliveryError) else error
            text = None if ok else scrub(detail or "failed")
            row.attempts += 1
            session.add(DeliveryAttempt(delivery_id=row.id, at=now, ok=ok, error=text))
            store = AlertStore(session)
            ids = {k: a.id for k in row.alert_keys if (a := store.alert_row(k)) is not None}
            where = f"{row.kind} via {row.channel}" + (f" (level {row.level})" if row.level else "")
            if ok:
                row.status, row.sent_at, row.next_attempt_at = "sent", now, None
                store.add_history([HistoryEntry(k, now, "notified", where) for k in ids], ids)
            else:
                row.last_error = text
                permanent = isinstance(error, DeliveryError) and not error.retryable
                if permanent or row.attempts >= retry.max_attempts:
                    row.status, row.next_attempt_at = "failed", None
                    why = "not retryable" if permanent else f"{row.attempts} attempts"
                    store.add_history(
                        [HistoryEntry(k, now, "delivery_failed", f"{where}: {text} ({why})") for k in ids],
                        ids,
                    )
                else:
                    row.next_attempt_at = now + timedelta(seconds=retry.delay(row.attempts))
            session.flush()
            return _delivery(row)

    def record_summarised(
        self,
        channel: str,
        summary: Notification,
        delivery_ids: Sequence[int],
        now: datetime,
    ) -> QueuedDelivery:
        """Fold the pending deliveries `delivery_ids` of `channel` into the rate-limit `summary`: in one
        transaction the summary becomes a new pending delivery (kind LIMIT_SUMMARY, about every alert
        the folded ones were about) and each folded one is settled as sent in it (`sent_at` now, no
        attempt: it was not sent on its own), with a `summarised` history entry naming the summary.
        Returns the summary's delivery, to be sent (and retried) like any other."""
        with self._sessions.begin() as session:
            rows = [
                r
                for r in session.scalars(
                    select(Delivery).where(Delivery.id.in_(list(delivery_ids))).order_by(Delivery.id)
                )
                if r.channel == channel and r.status == "pending"
            ]
            keys: list[str] = []
            for r in rows:
                keys += [k for k in r.alert_keys if k not in keys]
            row = Delivery(
                alert_key=summary.key,
                alert_keys=keys,
                channel=channel,
                kind=LIMIT_SUMMARY,
                level=0,
                notification=notification_json(summary),
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            session.add(row)
            session.flush()
            store = AlertStore(session)
            entries: list[HistoryEntry] = []
            ids: dict[str, int] = {}
            for r in rows:
                r.status, r.sent_at, r.next_attempt_at = "sent", now, None
                for k in r.alert_keys:
                    a = store.alert_row(k)
                    if a is None:
                        continue
                    ids[k] = a.id
                    entries.append(
                        HistoryEntry(
                            k,
                            now,
                            "summarised",
                            f"{r.kind} via {channel} over the rate limit: in summary {summary.key} "
                            f"(delivery #{row.id}, {len(rows)} notifications)",
                        )
                    )
            store.add_history(entries, ids)
            session.flush()
            return _delivery(row)

    def defer(self, delivery_ids: Sequence[int], until: datetime) -> None:
        """Hold pending deliveries back until `until` (a rate-limited channel gathering a summary)."""
        with self._sessions.begin() as session:
            for r in session.scalars(select(Delivery).where(Delivery.id.in_(list(delivery_ids)))):
                if r.status == "pending":
                    r.next_attempt_at = until

    def sent_times(self, since: datetime) -> dict[str, list[datetime]]:
        """When each channel sent something after `since`, oldest first: deliveries sent by a successful
        attempt (a summarised one was not sent on its own and does not count)."""
        sent = exists().where(DeliveryAttempt.delivery_id == Delivery.id, DeliveryAttempt.ok.is_(True))
        q = (
            select(Delivery.channel, Delivery.sent_at)
            .where(Delivery.status == "sent", Delivery.sent_at > since, sent)
            .order_by(Delivery.sent_at)
        )
        out: dict[str, list[datetime]] = {}
        with self._reads() as session:
            for channel, at in session.execute(q):
                if at is not None:
                    out.setdefault(channel, []).append(at)
        return out
