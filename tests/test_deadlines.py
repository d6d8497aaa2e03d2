"""Tests for voxserve.deadlines: the engine's pace, and when each sentence is due."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxserve.deadlines import MAX_OVERTAKE_S, WHOLE_STRETCH, DueTimes, Pace, first_due

pytestmark = pytest.mark.inprocess


def test_pace_follows_what_the_engine_does() -> None:
    pace = Pace(audio_per_char=0.06, real_time_factor=0.05)
    for _ in range(40):
        pace.observe(chars=100, audio_at_speed_1=10.0, elapsed=0.2)
    assert pace.audio_per_char == pytest.approx(0.1, rel=1e-3)
    assert pace.real_time_factor == pytest.approx(0.02, rel=1e-3)
    assert pace.audio_seconds(50, speed=2.0) == pytest.approx(2.5, rel=1e-3)
    assert pace.inference_seconds(50, speed=2.0) == pytest.approx(0.05, rel=1e-3)
    pace.observe(chars=0, audio_at_speed_1=0.0, elapsed=0.1)  # an empty batch teaches nothing
    assert pace.audio_per_char == pytest.approx(0.1, rel=1e-3)


def test_a_whole_response_is_due_at_its_stretched_inference_time_every_sentence_alike() -> None:
    pace = Pace(audio_per_char=0.001, real_time_factor=0.5)
    clock = DueTimes(["a" * 10, "b" * 20, "c" * 30], pace, whole=True, start=100.0, defer=2.0)
    # 0.03 s of inference at best (0.005 + 0.01 + 0.015), stretched, after the defer
    expected = 100.0 + 2.0 + WHOLE_STRETCH * 0.03
    assert [clock.due(i) for i in range(3)] == [pytest.approx(expected)] * 3
    assert not any(clock.read_ahead(i) for i in range(3))
    costs = [0.005, 0.01, 0.015]
    assert first_due(costs, whole=True, start=100.0, defer=2.0) == pytest.approx(expected)
    assert first_due(costs, whole=False, start=100.0) == pytest.approx(100.005)
    # A long one is due at most MAX_OVERTAKE_S after its arrival and the defer.
    assert first_due([60.0], whole=True, start=100.0, defer=2.0) == 102.0 + MAX_OVERTAKE_S


def test_a_short_whole_response_overtakes_longer_ones_queued_before_it_up_to_a_bound() -> None:
    """Under sustained load the order is nearly shortest first: a short reply arriving
    while an article waits goes before it, unless the article has waited MAX_OVERTAKE_S."""
    pace = Pace()
    article = DueTimes(["A long sentence of an article, read aloud. " * 3] * 30, pace, whole=True,
                       start=0.0)  # fmt: skip
    reply = ["Yes, of course."]
    soon = DueTimes(reply, pace, whole=True, start=MAX_OVERTAKE_S / 2)
    assert soon.due(0) < article.due(0)
    late = DueTimes(reply, pace, whole=True, start=MAX_OVERTAKE_S)
    assert late.due(0) > article.due(0)


def test_shorter_whole_responses_arriving_together_are_due_first() -> None:
    pace = Pace()
    short = DueTimes(["Yes."], pace, whole=True, start=0.0)
    long = DueTimes(["A much longer sentence. " * 5] * 10, pace, whole=True, start=0.0)
    assert short.due(0) < long.due(0)


def test_a_long_request_is_not_starved_by_short_ones_arriving_after_it() -> None:
    """Whatever arrives once the long request could have been done is due after it."""
    pace = Pace()
    long = DueTimes(["word " * 80] * 100, pace, whole=True, start=0.0)
    later_short = DueTimes(["Hi."], pace, whole=False, start=long.due(0))
    assert later_short.due(0) > long.due(0)


def test_a_stream_is_due_as_playback_reaches_each_sentence() -> None:
    pace = Pace(audio_per_char=0.1, real_time_factor=0.5)
    clock = DueTimes(["a" * 10, "b" * 20, "c" * 30], pace, pause=0.5, whole=False, start=100.0)
    # first audio expected at 100 + 10 * 0.1 * 0.5; then 1.5 s and 2.5 s of audio and pauses
    assert clock.due(0) == pytest.approx(100.5)
    assert clock.due(1) == pytest.approx(102.0)
    assert clock.due(2) == pytest.approx(104.5)
    assert [clock.read_ahead(i) for i in range(3)] == [False, True, True]
    # the first sentence actually went out at 101, 3 s long: playback follows that
    assert clock.sent(0, duration=3.0, now=101.0) == 0.0
    assert clock.due(1) == pytest.approx(104.0)
    assert clock.due(2) == pytest.approx(106.5)


def test_a_late_sentence_reports_the_gap_the_listener_heard() -> None:
    pace = Pace(audio_per_char=0.1, real_time_factor=0.5)
    clock = DueTimes(["a" * 10, "b" * 10, "c" * 10], pace, whole=False, start=0.0)
    clock.sent(0, duration=1.0, now=0.5)  # playback reaches sentence 1 at 1.5
    assert clock.sent(1, duration=1.0, now=2.0) == pytest.approx(0.5)
    assert clock.due(2) == pytest.approx(3.0)  # playback resumed at 2.0
    assert clock.sent(2, duration=1.0, now=2.5) == 0.0


def test_a_sent_head_moves_the_playhead_but_not_to_the_next_sentence() -> None:
    pace = Pace(audio_per_char=0.1, real_time_factor=0.5)
    clock = DueTimes(["a" * 30, "b" * 10], pace, whole=False, start=0.0)
    assert clock.sent(0, duration=1.0, now=0.4, complete=False) == 0.0
    assert clock.due(0) == pytest.approx(1.4)  # the rest: when the head has played
    assert clock.due(1) == pytest.approx(3.4)  # after the rest: 3 s expected, 1 s sent
    assert clock.sent(0, duration=2.0, now=1.9) == pytest.approx(0.5)  # the rest was late
    assert clock.due(1) == pytest.approx(3.9)


@given(
    first=st.lists(st.floats(0.001, 30.0), min_size=1, max_size=20),
    later=st.lists(st.floats(0.001, 30.0), min_size=1, max_size=20),
    defer=st.floats(0.0, 60.0),
    after=st.floats(0.0, 1e4),
)
def test_no_whole_response_is_overtaken_by_one_arriving_after_its_due(
    first: list[float], later: list[float], defer: float, after: float
) -> None:
    """The stretch bounds starvation: whatever arrives once a request is due, however
    short, is due after it, so it waits at most its stretched time plus the work due
    before it."""
    due = first_due(first, whole=True, start=0.0, defer=defer)
    assert due <= defer + min(WHOLE_STRETCH * sum(first), MAX_OVERTAKE_S) + 1e-9
    assert first_due(later, whole=True, start=due + after, defer=defer) > due
    assert first_due(later, whole=False, start=due + after) > due
