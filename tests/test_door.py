"""DoorTracker: forced / held-open derivation from contact, REX and grants, with an injected clock."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.door import DOOR_STATES, DoorTracker


def tracker(**kw: float) -> DoorTracker:
    return DoorTracker(held_open_after_s=60.0, access_grant_window_s=10.0, **kw)


def test_starts_unknown_then_closed() -> None:
    t = tracker()
    assert t.status.state == "unknown"
    s = t.update(0.0, False, False)
    assert (s.state, s.open_since) == ("closed", None)


def test_grant_then_open_is_open_then_held_at_threshold() -> None:
    t = tracker()
    t.update(0.0, False, False)
    t.note_access_granted(5.0)
    assert t.update(7.0, True, False).state == "open"
    assert t.update(66.9, True, False).state == "open"
    s = t.update(67.0, True, False)
    assert (s.state, s.open_since) == ("held_open", 7.0)
    assert t.update(80.0, False, False).state == "closed"


def test_open_without_grant_is_forced_and_stays_forced_past_threshold() -> None:
    t = tracker()
    t.update(0.0, False, False)
    assert t.update(5.0, True, False).state == "forced_open"
    s = t.update(500.0, True, False)
    assert (s.state, s.open_since) == ("forced_open", 5.0)


def test_grant_older_than_window_does_not_authorise() -> None:
    t = tracker()
    t.note_access_granted(0.0)
    assert t.update(10.5, True, False).state == "forced_open"


def test_grant_exactly_at_window_edge_authorises() -> None:
    t = tracker()
    t.note_access_granted(0.0)
    assert t.update(10.0, True, False).state == "open"


def test_rex_in_same_poll_as_opening_authorises() -> None:
    t = tracker()
    t.update(0.0, False, False)
    assert t.update(1.0, True, True).state == "open"


def test_rex_shortly_before_opening_authorises() -> None:
    t = tracker()
    t.update(0.0, False, True)
    assert t.update(4.0, True, False).state == "open"


def test_rex_pressed_long_after_forced_opening_does_not_launder_it() -> None:
    t = tracker()
    t.update(0.0, True, False)
    assert t.update(30.0, True, True).state == "forced_open"


def test_rex_while_open_does_not_restart_held_timer() -> None:
    t = tracker()
    t.note_access_granted(0.0)
    t.update(1.0, True, False)
    t.update(50.0, True, True)
    assert t.update(61.0, True, False).state == "held_open"


def test_grant_arriving_after_the_poll_reclassifies_that_opening() -> None:
    t = tracker()
    t.update(0.0, False, False)
    assert t.update(10.0, True, False).state == "forced_open"
    # The panel event (stamped 9.5 s, before the poll) is delivered after the poll was processed.
    t.note_access_granted(9.5)
    assert t.status.state == "open"
    assert t.update(11.0, True, False).state == "open"


def test_grant_stamped_slightly_after_the_contact_within_skew_authorises() -> None:
    t = tracker(grant_skew_s=2.0)
    t.update(10.0, True, False)
    t.note_access_granted(11.5)
    assert t.update(12.0, True, False).state == "open"


def test_grant_long_after_forced_opening_does_not_reclassify() -> None:
    t = tracker(grant_skew_s=2.0)
    t.update(10.0, True, False)
    t.note_access_granted(20.0)
    assert t.update(21.0, True, False).state == "forced_open"


def test_close_and_reopen_inside_grant_window_is_still_authorised() -> None:
    t = tracker()
    t.note_access_granted(0.0)
    assert t.update(1.0, True, False).state == "open"
    assert t.update(3.0, False, False).state == "closed"
    s = t.update(5.0, True, False)
    assert (s.state, s.open_since) == ("open", 5.0)  # a new opening: the held timer restarts


def test_reopen_after_grant_window_is_forced() -> None:
    t = tracker()
    t.note_access_granted(0.0)
    t.update(1.0, True, False)
    t.update(3.0, False, False)
    assert t.update(30.0, True, False).state == "forced_open"


def test_flapping_contact_with_grace_continues_the_opening() -> None:
    t = tracker(reopen_grace_s=5.0)
    t.note_access_granted(0.0)
    t.update(1.0, True, False)
    t.update(40.0, False, False)  # reed switch bounce
    s = t.update(42.0, True, False)
    assert (s.state, s.open_since) == ("open", 1.0)
    assert t.update(61.0, True, False).state == "held_open"


def test_flapping_forced_door_stays_forced_with_grace() -> None:
    t = tracker(reopen_grace_s=5.0)
    t.update(1.0, True, False)
    t.update(2.0, False, False)
    assert t.update(3.0, True, False).state == "forced_open"


def test_unknown_contact_keeps_the_opening() -> None:
    t = tracker()
    t.note_access_granted(0.0)
    t.update(1.0, True, False)
    s = t.update(30.0, None, None)
    assert (s.state, s.open_since) == ("unknown", 1.0)
    assert t.update(61.0, True, False).state == "held_open"


def test_unknown_contact_does_not_launder_forced() -> None:
    t = tracker()
    t.update(1.0, True, False)
    t.update(2.0, None, None)
    assert t.update(3.0, True, False).state == "forced_open"


def test_clock_going_backwards_keeps_elapsed_time_and_never_goes_negative() -> None:
    t = tracker()
    t.note_access_granted(1000.0)
    t.update(1001.0, True, False)
    t.update(1031.0, True, False)  # 30 s open
    s = t.update(500.0, True, False)  # clock stepped back 531 s
    assert s.state == "open"
    assert s.open_since == pytest.approx(470.0)
    assert t.update(529.9, True, False).state == "open"
    assert t.update(530.0, True, False).state == "held_open"


def test_clock_backwards_does_not_turn_old_grant_into_future_authorisation() -> None:
    t = tracker()
    t.update(1000.0, False, False)
    t.note_access_granted(999.0)
    t.update(100.0, False, False)  # back 900 s: the grant is now at 99 s
    assert t.update(120.0, True, False).state == "forced_open"


def test_rejects_bad_thresholds() -> None:
    with pytest.raises(ValueError, match="held_open_after_s"):
        DoorTracker(held_open_after_s=0.0, access_grant_window_s=5.0)


# --- properties ---------------------------------------------------------------------------------

samples = st.lists(
    st.tuples(
        st.floats(0.0, 30.0),  # time step to the next sample
        st.sampled_from([True, False, None]),  # contact
        st.sampled_from([True, False, None]),  # rex
        st.booleans(),  # a grant event before this sample
    ),
    max_size=60,
)


@settings(max_examples=300)
@given(samples, st.floats(1.0, 100.0), st.floats(0.0, 20.0))
def test_properties_of_any_sequence(seq, held, window) -> None:
    t = DoorTracker(held_open_after_s=held, access_grant_window_s=window)
    ts = 0.0
    open_run_start: float | None = None  # first sample of the current open run (unknown keeps it)
    for dt, contact, rex, grant in seq:
        ts += dt
        if grant:
            t.note_access_granted(ts)
        s = t.update(ts, contact, rex)
        assert s.state in DOOR_STATES
        if contact is False:
            assert s.state == "closed"
            assert s.open_since is None
            open_run_start = None
        elif contact is None:
            assert s.state == "unknown"
        else:
            if open_run_start is None:
                open_run_start = ts
            assert s.open_since == open_run_start
            assert s.state in ("open", "forced_open", "held_open")
            if s.state == "held_open":
                assert ts - open_run_start >= held
            if s.state == "open":
                assert ts - open_run_start < held


@settings(max_examples=300)
@given(st.lists(st.tuples(st.floats(0.0, 30.0), st.sampled_from([True, False, None])), max_size=60))
def test_without_grant_or_rex_every_opening_is_forced(seq) -> None:
    t = DoorTracker(held_open_after_s=5.0, access_grant_window_s=10.0, reopen_grace_s=3.0)
    ts = 0.0
    for dt, contact in seq:
        ts += dt
        s = t.update(ts, contact, False)
        if contact:
            assert s.state == "forced_open"


@settings(max_examples=200)
@given(st.lists(st.tuples(st.floats(-500.0, 60.0), st.booleans()), max_size=60))
def test_clock_jumps_never_give_negative_open_durations(seq) -> None:
    t = DoorTracker(held_open_after_s=30.0, access_grant_window_s=10.0)
    ts = 10_000.0
    t.note_access_granted(ts)
    for dt, contact in seq:
        ts += dt
        s = t.update(ts, contact, False)
        if s.open_since is not None:
            assert s.open_since <= ts
            if s.state == "held_open":
                assert ts - s.open_since >= 30.0
