"""PollSchedule: cadence, jitter and backoff with an injected clock."""

import random

from hypothesis import given
from hypothesis import strategies as st

from collector.schedule import PollSchedule


def test_first_poll_within_jitter_window() -> None:
    rng = random.Random(1)
    for _ in range(200):
        s = PollSchedule.start(100.0, 5.0, jitter_pct=10, backoff_max_s=300, rng=rng)
        assert 100.0 <= s.next_due <= 100.5


def test_cadence_stays_on_grid_even_when_polls_take_time() -> None:
    s = PollSchedule.start(0.0, 1.0, jitter_pct=0, backoff_max_s=60, rng=random.Random(0))
    dues = []
    now = s.next_due
    for i in range(10):
        now = s.next_due + 0.3 * (i % 2)  # polls finish 0 or 300 ms late
        dues.append(s.after_success(now))
    assert dues == [float(i) for i in range(1, 11)]


def test_overrun_skips_missed_grid_points_instead_of_bursting() -> None:
    s = PollSchedule.start(0.0, 1.0, jitter_pct=0, backoff_max_s=60, rng=random.Random(0))
    assert s.after_success(3.5) == 4.0


def test_backoff_doubles_and_is_capped_then_resets() -> None:
    s = PollSchedule.start(0.0, 1.0, jitter_pct=0, backoff_max_s=8, rng=random.Random(0))
    now = 0.0
    gaps = []
    for _ in range(6):
        due = s.after_failure(now)
        gaps.append(due - now)
        now = due
    assert gaps == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    due = s.after_success(now)
    assert s.failures == 0
    assert due - now <= 1.0


@given(
    interval=st.floats(0.1, 3600),
    lateness=st.lists(st.floats(0, 0.99), min_size=1, max_size=50),
)
def test_successful_polls_never_drift(interval: float, lateness: list[float]) -> None:
    s = PollSchedule.start(0.0, interval, jitter_pct=0, backoff_max_s=300, rng=random.Random(0))
    start = s.next_due
    for k, late in enumerate(lateness, start=1):
        due = s.after_success(s.next_due + late * interval)
        assert abs(due - (start + k * interval)) < 1e-6 * max(1.0, k * interval)
