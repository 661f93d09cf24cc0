"""The quarterly access-rights review over a real records database (SQLite): start, decide, sign off,
read-only afterwards (every refused attempt audited), separation of duties, the next quarter's comparison."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text

from compliance.access.codec import review_json
from compliance.access.model import Badge, FlagRules, Grant, Holder, Schedule
from compliance.access.review import (
    Quarter,
    Review,
    ReviewRefused,
    SeparationOfDuties,
    decide,
    review_lines,
    sign_off,
)
from compliance.access.service import start_review
from compliance.access.store import AccessStore
from records.audit import Actor, AuditEntry, verify
from records.db import make_engine, session_factory
from records.migrate import upgrade

TZ = ZoneInfo("Asia/Taipei")
ADMIN = "門禁管理員"  # implements every grant in the panel
RULES = FlagRules()


def at(month: int, day: int, hour: int = 10, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, tzinfo=TZ)


@pytest.fixture
def store(tmp_path: Path) -> AccessStore:
    engine = make_engine(tmp_path / "records.db")
    upgrade(engine)
    return AccessStore(session_factory(engine))


def grant(gid: str, person: str, cred: str, **kw: object) -> Grant:
    base: dict[str, object] = {
        "zones": ("mr1",),
        "valid_from": at(1, 5),
        "requester": "李組長",
        "approver": "黃經理",
        "implementer": ADMIN,
        "ticket": f"T-{gid}",
    }
    base.update(kw)
    return Grant(gid, person, cred, **base)  # type: ignore[arg-type]


def seed(store: AccessStore) -> None:
    who = Actor("hr-import", "test")
    store.put_holders(
        [
            Holder("E001", "王小明", "employee", "資訊部"),
            Holder("E002", "林美華", "employee", "資訊部", left_at=at(11, 30, 18)),
            Holder("V001", "陳志強", "vendor", "大同機電"),
        ],
        who,
        at(12, 1),
    )
    store.put_grants(
        [
            grant("G-E001", "E001", "C1"),
            grant("G-E002", "E002", "C2"),
            grant(
                "G-V001",
                "V001",
                "CV1",
                work_order="WO-77",
                valid_from=at(12, 1),
                schedule=Schedule.parse("mon-fri 08:00-18:00"),
            ),
        ],
        who,
        at(12, 1),
    )
    badges = [
        Badge(at(12, 10, 10), "D-main", "mr1", "C1"),
        Badge(at(12, 10, 10) + timedelta(seconds=30), "D-main", "mr1", "CV1"),  # escorted
        Badge(at(12, 12, 10), "D-main", "mr1", "CV1"),  # Saturday, and alone
    ]
    assert store.add_badges(badges, who, at(12, 20), "panel-2026-12.csv#abc") == 3
    assert store.add_badges(badges, who, at(12, 21), "panel-2026-12.csv#abc") == 0  # the same file again


def test_start_decide_sign_off_and_read_only_afterwards(store: AccessStore) -> None:
    seed(store)
    now = at(12, 31, 9)
    review = start_review(
        store, "tpe-hq", "2026Q4", "機房管理人", Actor("機房管理人", "test"), now, TZ, RULES
    )
    assert review.review_id == "ACR-2026Q4-tpe-hq"
    flags = {ln.grant.grant_id: sorted(f.code for f in ln.flags) for ln in review.lines}
    assert flags == {
        "G-E001": [],
        "G-E002": ["DORMANT_90D", "LEAVER_ACTIVE"],
        "G-V001": ["AFTER_HOURS", "UNESCORTED_VENDOR"],
    }
    # Nothing was reviewed before: lines granted before the quarter are unchanged, the vendor's is new.
    assert {ln.grant.grant_id: ln.change_type for ln in review.lines} == {
        "G-E001": "none",
        "G-E002": "none",
        "G-V001": "added",
    }
    reviewer = Actor("資訊主管", "test")
    with pytest.raises(ReviewRefused, match="needs a reason"):
        store.decide(review.review_id, "G-E002", "revoke", "", "資訊主管", reviewer, now)
    store.decide(review.review_id, "G-E001", "keep", "", "資訊主管", reviewer, now)
    store.decide(review.review_id, "G-E002", "revoke", "已離職 left on 11-30", "資訊主管", reviewer, now)
    with pytest.raises(ReviewRefused, match="1 grant"):
        store.sign_off(review.review_id, "資訊主管", reviewer, now)
    store.decide(
        review.review_id, "G-V001", "change", "限平日 weekdays only, escort", "資訊主管", reviewer, now
    )
    # Separation of duties: the access administrator who set the grants in the panel may not sign.
    with pytest.raises(ReviewRefused, match="separation of duties"):
        store.sign_off(review.review_id, ADMIN, Actor(ADMIN, "test"), now)
    signed = store.sign_off(review.review_id, "資訊主管", reviewer, now, "Q4 reviewed")
    assert signed.status == "signed"
    assert store.review(review.review_id).sign_offs[0].by == "資訊主管"
    # Read-only: every change is refused, and each refusal is in the audit log.
    with pytest.raises(ReviewRefused, match="signed"):
        store.decide(review.review_id, "G-E001", "revoke", "late change", "資訊主管", reviewer, now)
    with pytest.raises(ReviewRefused, match="already signed"):
        store.sign_off(review.review_id, "資訊長", Actor("資訊長", "test"), now)
    assert store.review(review.review_id).line("G-E001").decision == "keep"
    with store.sessions() as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.entity == "access.review")).all()
        actions = [e.action for e in entries]
        assert actions.count("decide") == 3
        assert actions.count("sign_off") == 1
        refused = [e.note or "" for e in entries if e.action == "refused"]
        assert len(refused) == 5  # no reason, undecided, administrator, and the two after sign-off
        assert any("decide" in n and "signed" in n for n in refused)
        assert verify(s).ok
    # A later change is a new review of the quarter, linked to the signed one.
    again = start_review(store, "tpe-hq", "2026Q4", "機房管理人", Actor("機房管理人", "test"), now, TZ, RULES)
    assert (again.review_id, again.supersedes) == ("ACR-2026Q4-tpe-hq-2", "ACR-2026Q4-tpe-hq")
    with pytest.raises(ReviewRefused, match="still open"):
        start_review(store, "tpe-hq", "2026Q4", "機房管理人", Actor("機房管理人", "test"), now, TZ, RULES)


def test_the_next_quarter_shows_new_changed_and_removed_grants(store: AccessStore) -> None:
    seed(store)
    now = at(12, 31, 9)
    q4 = start_review(store, "tpe-hq", "2026Q4", "機房管理人", Actor("m", "test"), now, TZ, RULES)
    for ln in q4.lines:
        store.decide(q4.review_id, ln.grant.grant_id, "keep", "", "資訊主管", Actor("資訊主管", "test"), now)
    store.sign_off(q4.review_id, "資訊主管", Actor("資訊主管", "test"), now)
    who = Actor("門禁管理員", "test")
    later = at(1, 10, year=2027)
    store.put_grants(
        [
            grant("G-E001", "E001", "C1", zones=("mr1", "ups")),  # changed: one more zone
            grant("G-E002", "E002", "C2", valid_to=at(1, 2, year=2027)),  # revoked in the quarter
            grant("G-E003", "E001", "C3", valid_from=at(1, 8, year=2027)),  # new
        ],
        who,
        later,
    )
    q1 = start_review(
        store, "tpe-hq", "2027Q1", "機房管理人", Actor("m", "test"), at(3, 31, year=2027), TZ, RULES
    )
    assert q1.previous_review_id == q4.review_id
    changes = {ln.grant.grant_id: ln.change_type for ln in q1.lines}
    assert changes == {"G-E001": "modified", "G-E002": "revoked", "G-E003": "added", "G-V001": "none"}
    assert "mr1" in q1.line("G-E001").before
    assert q1.removed == ()


def test_quarters() -> None:
    q = Quarter.parse("2026Q4", TZ)
    assert (q.start, q.end) == (at(10, 1, 0), at(1, 1, 0, year=2027))
    assert q.previous(TZ).label == "2026Q3"
    assert Quarter.parse("2027q1", TZ).previous(TZ).label == "2026Q4"
    assert Quarter.parse("1000Q1", TZ).previous(TZ).label == "999Q4"  # found by schemathesis: was a 500
    with pytest.raises(ValueError, match="YEARQn"):
        Quarter.parse("2026Q5", TZ)


def test_decisions_on_many_grants_are_all_or_none_and_each_audited(store: AccessStore) -> None:
    seed(store)
    now = at(12, 31, 9)
    review = start_review(store, "tpe-hq", "2026Q4", "機房管理人", Actor("m", "test"), now, TZ, RULES)
    boss = Actor("資訊主管", "test")
    with pytest.raises(ReviewRefused, match="G-NOPE") as refused:
        store.decide_many(review.review_id, ["G-E001", "G-NOPE"], "keep", "", "資訊主管", boss, now)
    assert "G-E001" in str(refused.value)  # the message lists the review's grants
    assert store.review(review.review_id).line("G-E001").decision is None  # none of them decided
    assert (
        store.decide_many(review.review_id, ["G-E001", "G-V001", "G-E001"], "keep", "", "資訊主管", boss, now)
        == 2
    )
    decided = store.review(review.review_id)
    assert [(ln.grant.grant_id, ln.decision, ln.decided_by) for ln in decided.lines] == [
        ("G-E001", "keep", "資訊主管"),
        ("G-E002", None, ""),
        ("G-V001", "keep", "資訊主管"),
    ]
    assert decided.line("G-E001").decided_at == now
    # Re-deciding keeps the earlier decision in the audit entry's "before".
    store.decide(review.review_id, "G-V001", "change", "office hours only", "資訊主管", boss, now)
    with store.sessions() as s:
        entries = s.scalars(
            select(AuditEntry).where(AuditEntry.entity == "access.review", AuditEntry.action == "decide")
        ).all()
        assert [e.entity_id.split("#")[1] for e in entries] == ["G-E001", "G-V001", "G-V001"]
        assert entries[-1].before == {"decision": "keep", "reason": "", "decided_by": "資訊主管"}
        assert entries[-1].after == {
            "decision": "change",
            "reason": "office hours only",
            "decided_by": "資訊主管",
        }
        assert [e.action for e in s.scalars(select(AuditEntry).where(AuditEntry.action == "refused"))] == [
            "refused"
        ]
        assert verify(s).ok
    with pytest.raises(ReviewRefused, match="valid choices"):
        store.decide_many(review.review_id, ["G-E002"], "maybe", "", "資訊主管", boss, now)
    # The decisions survive sign-off, and the signed review's snapshot carries them too.
    store.decide(review.review_id, "G-E002", "revoke", "left", "資訊主管", boss, now)
    signed = store.sign_off(review.review_id, "資訊主管", boss, now)
    assert [ln.decision for ln in signed.lines] == ["keep", "revoke", "change"]
    assert [ln.decision for ln in store.reviews("2026Q4")[0].lines] == ["keep", "revoke", "change"]


def test_the_migration_moves_decisions_stored_inside_reviews_into_their_rows(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "records.db")
    upgrade(engine, "0005")
    before = AccessStore(session_factory(engine))
    # What a 0005 database holds: the review's JSON with a decision inside it.
    seed(before)
    now = at(12, 31, 9)
    lines, _ = review_lines(
        before.holders(), before.grants(), before.badges(), Quarter.parse("2026Q4", TZ), now, TZ
    )
    review = Review(
        "ACR-old", "tpe-hq", "2026Q4", at(10, 1, 0), at(1, 1, 0, year=2027), now, "m", tuple(lines)
    )
    review = decide(review, "G-E002", "revoke", "left", "資訊主管", now)
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO access_reviews (review_id, site, quarter, status, data, created_at, updated_at) "
                "VALUES ('ACR-old', 'tpe-hq', '2026Q4', 'open', :data, :t, :t)"
            ),
            {"data": json.dumps(review_json(review)), "t": "2026-12-31 01:00:00.000000"},
        )
    upgrade(engine)
    after = AccessStore(session_factory(engine)).review("ACR-old")
    assert [(ln.grant.grant_id, ln.decision, ln.reason, ln.decided_at) for ln in after.lines] == [
        ("G-E001", None, "", None),
        ("G-E002", "revoke", "left", now),
        ("G-V001", None, "", None),
    ]


def test_the_signer_is_refused_under_any_of_their_names(store: AccessStore) -> None:
    """A web user signs as 'display name (login)': the login and the display name are both checked."""
    seed(store)
    now = at(12, 31, 9)
    review = start_review(store, "tpe-hq", "2026Q4", "機房管理人", Actor("m", "test"), now, TZ, RULES)
    for ln in review.lines:
        review = decide(review, ln.grant.grant_id, "keep", "", "資訊主管", now)
    with pytest.raises(SeparationOfDuties, match="separation of duties"):
        sign_off(review, f"{ADMIN} (keeper)", now, aliases=("keeper", f" {ADMIN} "))
    with pytest.raises(SeparationOfDuties):
        sign_off(review, "keeper", now, aliases=(ADMIN.upper(),))
    assert sign_off(review, "April (april)", now, aliases=("april", "April")).status == "signed"
