"""Ingest's per-device sequence tracking (pure): holes, late messages that fill them, and restarts."""

from __future__ import annotations

from ingest.seq import SeqOutcome, SeqTracker

K = ("s", "r", "d")


def _run(tracker: SeqTracker, seqs: list[int], epoch: str | None = None) -> list[SeqOutcome]:
    return [tracker.observe(K, s, epoch)[0] for s in seqs]


def test_a_gap_is_missing_until_the_late_messages_fill_it() -> None:
    t = SeqTracker()
    assert _run(t, [0, 1, 2, 6]) == ["first", "next", "next", "gap"]
    assert t.missing == 3
    assert _run(t, [4, 4, 3, 5, 7]) == ["filled", "duplicate", "filled", "filled", "next"]
    assert t.missing == 0
    assert t.devices[K].holes == []


def test_within_one_epoch_a_low_seq_is_late_never_a_restart() -> None:
    """A collector republishing its unconfirmed backlog after a broker restart sends seq 0 again."""
    t = SeqTracker()
    assert _run(t, [40, 41, 0, 1, 42], epoch="e1") == ["first", "next", "duplicate", "duplicate", "next"]
    assert t.missing == 0
    # A new epoch (the collector's state was reset): a restart, followed from there.
    assert _run(t, [0, 1], epoch="e2") == ["restart", "next"]


def test_without_an_epoch_a_zero_that_fills_no_hole_is_a_restart() -> None:
    t = SeqTracker()
    assert _run(t, [10, 11, 0, 1]) == ["first", "next", "restart", "next"]
    t2 = SeqTracker()
    assert _run(t2, [0, 3, 1, 2]) == ["first", "gap", "filled", "filled"]


def test_a_shared_subscription_keeps_no_holes() -> None:
    t = SeqTracker(track_holes=False)
    assert _run(t, [0, 2, 4]) == ["first", "gap", "gap"]
    assert t.missing == 0
