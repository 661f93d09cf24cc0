"""The admission limit (collector.admission): AIMD on loop lag, driven by an injected clock, no sleeps."""

from __future__ import annotations

import pytest

from collector.admission import AdmissionConfig, AdmissionControl
from tests.manual_clock import Clock

CALM = 0.0
LATE = 0.5  # well above the default 0.1 s target
TICK = 0.05


def control(clock: Clock, **kw: float) -> AdmissionControl:
    return AdmissionControl(clock, AdmissionConfig(**kw))  # type: ignore[arg-type]


def fill(c: AdmissionControl, n: int) -> list[bool]:
    return [c.request() for _ in range(n)]


def test_admits_up_to_the_limit_then_queues_in_order() -> None:
    c = control(Clock(0.0), initial=3)
    assert fill(c, 6) == [True, True, True, False, False, False]
    assert (c.in_flight, c.queued) == (3, 3)
    assert not c.grant()  # no room yet
    c.finish()  # the limit held polls back and the loop is calm: it grows by one as well
    assert c.grant()
    assert c.grant()
    assert not c.grant()
    assert (c.limit, c.in_flight, c.queued) == (4, 4, 1)


def test_a_newcomer_does_not_overtake_a_queued_poll() -> None:
    c = control(Clock(0.0), initial=1, floor=1)
    assert fill(c, 2) == [True, False]
    c.finish()  # a slot is free, but the queued poll is first in line
    assert not c.request()
    assert c.queued == 2


def test_withdrawn_poll_leaves_the_queue() -> None:
    c = control(Clock(0.0), initial=1, floor=1)
    fill(c, 3)
    c.withdraw()
    assert c.queued == 1


def test_late_loop_halves_what_is_in_flight() -> None:
    c = control(Clock(0.0), initial=64)
    fill(c, 40)
    c.observe_lag(LATE)
    assert c.limit == 20  # from the 40 in flight, not from the limit of 64
    assert c.decreases == 1
    assert not c.request()  # 40 in flight > 20: newcomers wait until the backlog drains


def test_one_backlog_cuts_the_limit_once() -> None:
    clock = Clock(0.0)
    c = control(clock, initial=32)
    fill(c, 32)
    c.observe_lag(LATE)
    for _ in range(5):  # the polls admitted before the cut keep the loop late for a while
        clock.t += TICK
        c.observe_lag(LATE)
    assert c.limit == 16
    assert c.decreases == 1
    clock.t += LATE  # still late after the hold: this is a new backlog
    c.observe_lag(LATE)
    assert c.limit == 8
    assert c.decreases == 2


def test_limit_never_drops_below_the_floor() -> None:
    clock = Clock(0.0)
    c = control(clock, initial=16, floor=2)
    fill(c, 16)
    for _ in range(20):
        clock.t += 1.0
        c.observe_lag(LATE)
    assert c.limit == 2
    c.observe_lag(LATE)
    assert c.limit == 2


def test_a_stall_with_almost_nothing_in_flight_is_not_the_polls_doing() -> None:
    c = control(Clock(0.0), initial=32, floor=2)
    fill(c, 2)
    c.observe_lag(LATE)  # e.g. the sink committed to a slow disk
    assert c.limit == 32
    assert c.decreases == 0


def test_limit_that_holds_nobody_back_does_not_grow() -> None:
    c = control(Clock(0.0), initial=8)
    for _ in range(100):
        assert c.request()
        c.finish()
        c.observe_lag(CALM)
    assert c.limit == 8


def test_binding_limit_grows_a_slot_per_finished_poll_while_calm() -> None:
    c = control(Clock(0.0), initial=4)
    fill(c, 20)
    for _ in range(4):
        c.finish()
        while c.grant():
            pass
    assert (c.limit, c.in_flight) == (8, 8)  # slow start: the limit doubles per round of polls


def test_near_target_the_limit_grows_one_slot_per_tick_while_polls_wait() -> None:
    clock = Clock(0.0)
    c = control(clock, initial=10)
    fill(c, 30)
    for _ in range(5):
        clock.t += TICK
        c.observe_lag(0.05)  # between calm (0.025) and target (0.1): additive increase
    assert c.limit == 15
    for _ in range(5):  # finished polls add nothing unless the loop is calm
        c.finish()
        c.grant()
    assert c.limit == 15


def test_nothing_waits_nothing_grows() -> None:
    clock = Clock(0.0)
    c = control(clock, initial=10)
    fill(c, 10)
    for _ in range(5):
        clock.t += TICK
        c.observe_lag(CALM)
    assert c.limit == 10


def test_no_growth_while_the_loop_is_late() -> None:
    clock = Clock(0.0)
    c = control(clock, initial=8)
    fill(c, 30)
    c.observe_lag(LATE)
    assert c.limit == 4
    for _ in range(20):
        c.finish()
        c.grant()
        clock.t += TICK / 10
        c.observe_lag(0.05)  # back near the target, but the cut's hold is not over
    assert c.limit == 4


def test_calm_ticks_double_the_limit_while_polls_wait() -> None:
    """Slow or dead devices hold their slots without using the CPU: waiting polls must get in."""
    clock = Clock(0.0)
    c = control(clock, initial=4)
    fill(c, 40)  # nothing finishes: four devices are silent until their timeout
    for _ in range(4):
        clock.t += TICK
        c.observe_lag(CALM)
        while c.grant():
            pass
    assert c.limit == 64
    assert c.queued == 0


def test_calm_means_calm_for_the_whole_window() -> None:
    clock = Clock(0.0)
    c = control(clock, initial=4, floor=4)
    fill(c, 40)
    c.observe_lag(LATE)
    clock.t += 0.6
    c.observe_lag(CALM)  # one calm tick soon after a late one: one more slot, no doubling yet
    assert c.limit == 5
    clock.t += 0.6
    c.observe_lag(CALM)
    assert c.limit == 10


def test_idle_site_is_held_back_at_most_in_its_first_round() -> None:
    """50 devices at 1 s, due within the same 100 ms, each poll 50 ms, the loop never late."""
    clock = Clock(0.0)
    c = control(clock)
    held_back: list[int] = []
    ends: list[float] = []  # when the polls in flight finish
    next_tick = TICK
    for second in range(10):
        arrivals = [second + i * 0.002 for i in range(50)]
        waited = 0
        while arrivals or ends or c.queued:  # one round, in 1 ms steps
            clock.t = round(clock.t + 0.001, 6)
            while arrivals and arrivals[0] <= clock.t:
                arrivals.pop(0)
                if c.request():
                    ends.append(clock.t + 0.05)
                else:
                    waited += 1
            for end in [e for e in ends if e <= clock.t]:  # the poller's leave(): finish, admit
                ends.remove(end)
                c.finish()
                while c.grant():
                    ends.append(clock.t + 0.05)
            if clock.t >= next_tick:
                next_tick += TICK
                c.observe_lag(CALM)
                while c.grant():
                    ends.append(clock.t + 0.05)
        held_back.append(waited)
        clock.t = float(second + 1) - 0.001
    assert held_back[0] > 0
    assert held_back[1:] == [0] * 9, held_back


def test_saturated_loop_settles_near_the_target_lag() -> None:
    """A loop needing 20 ms per poll runs about in_flight x 20 ms late; demand always exceeds it."""
    clock = Clock(0.0)
    c = control(clock, initial=16)
    lags: list[float] = []
    fill(c, 1000)
    for _ in range(2000):
        clock.t += TICK
        lag = c.in_flight * 0.020
        c.observe_lag(lag)
        lags.append(lag)
        for _ in range(min(c.in_flight, 3)):  # 60 ms of work per 50 ms tick: never enough
            c.finish()
            c.request()  # the device is due again at once
            while c.grant():
                pass
        while c.grant():
            pass
    settled = lags[100:]
    assert max(settled) <= 0.25, max(settled)
    assert min(settled) > 0  # but the limit never starves the loop either
    assert c.limit >= c.config.floor
    assert c.queued > 0


def test_inconsistent_config_is_refused() -> None:
    with pytest.raises(ValueError, match="inconsistent"):
        control(Clock(0.0), floor=0)
    with pytest.raises(ValueError, match="inconsistent"):
        control(Clock(0.0), backoff=1.0)
