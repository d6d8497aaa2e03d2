"""Admission by estimated work: the arithmetic of the gate and its tickets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxserve.admission import Admission
from voxserve.deadlines import MAX_OVERTAKE_S
from voxserve.errors import Overloaded

pytestmark = pytest.mark.inprocess


def gate(**overrides: float) -> Admission:
    values: dict[str, float] = {"lanes": 2, "max_wait": 10.0, "max_queue": 256}
    values.update(overrides)
    return Admission(
        lanes=int(values["lanes"]), max_wait=values["max_wait"], max_queue=int(values["max_queue"])
    )


def test_an_idle_gate_admits_any_size() -> None:
    admission = gate()
    ticket = admission.admit([500.0], footprint=1)
    assert admission.work == 500.0
    assert admission.wait() == 250.0  # two lanes
    ticket.close()
    assert (admission.work, admission.admitted, admission.queued) == (0.0, 0, 0)


def test_the_wait_is_the_work_ahead_over_the_lanes_and_retry_after_when_it_fits() -> None:
    admission = gate(max_wait=10.0)
    admission.admit([8.0, 8.0, 8.0], footprint=3)  # 24 s on 2 lanes: a 12 s wait
    with pytest.raises(Overloaded) as refused:
        admission.admit([0.1], footprint=1)
    assert "12 s" in refused.value.message
    assert refused.value.retry_after == pytest.approx(2.0)
    assert admission.admitted == 1


def test_work_goes_down_sentence_by_sentence_and_the_rest_at_close() -> None:
    admission = gate(max_wait=6.0)
    ticket = admission.admit([6.0, 6.0], footprint=2)
    admission.admit([1.0], footprint=1)  # 12 / 2 = 6 s: just fits
    with pytest.raises(Overloaded):
        admission.admit([1.0], footprint=1)  # (12 + 1) / 2 = 6.5 s > 6
    ticket.done(0)
    ticket.done(0)  # a sentence counts once
    assert admission.work == pytest.approx(7.0)
    admission.admit([1.0], footprint=1)  # 3.5 s: fits
    ticket.close()
    ticket.close()
    assert admission.work == pytest.approx(2.0)
    assert admission.admitted == 2


def test_the_queue_bound_counts_footprints() -> None:
    admission = gate(max_queue=4)
    admission.admit([0.1] * 12, footprint=3)
    with pytest.raises(Overloaded, match="queue is full"):
        admission.admit([0.1] * 12, footprint=3)
    admission.admit([0.1], footprint=1)


@settings(deadline=None)  # pure arithmetic, but a busy CI machine can pause any example
@given(
    st.lists(
        st.tuples(st.lists(st.floats(0, 50), min_size=1, max_size=8), st.integers(1, 3)),
        max_size=30,
    ),
    st.data(),
)
def test_whatever_the_order_of_dones_and_closes_the_gate_returns_to_empty(
    requests: list[tuple[list[float], int]], data: st.DataObject
) -> None:
    admission = gate(max_wait=1e9, max_queue=10**6)
    tickets = [admission.admit(costs, footprint) for costs, footprint in requests]
    for ticket, (costs, _) in zip(tickets, requests, strict=True):
        for index in data.draw(st.lists(st.integers(0, len(costs) - 1), max_size=len(costs))):
            ticket.done(index)
        assert admission.work >= 0
    for ticket in data.draw(st.permutations(tickets)):
        ticket.close()
    assert (admission.work, admission.admitted, admission.queued) == (0.0, 0, 0)


def test_the_rate_follows_the_work_actually_done_while_busy() -> None:
    """Estimated work that takes twice as long as estimated doubles the estimated waits;
    idle time between requests does not count."""
    now = [0.0]
    admission = Admission(lanes=2, max_wait=10.0, max_queue=256, clock=lambda: now[0])
    for _ in range(20):
        ticket = admission.admit([1.0, 1.0], footprint=2)
        now[0] += 1.0  # two estimated seconds in one: half the two lanes' rate
        ticket.done(0)
        ticket.done(1)
        ticket.close()
        now[0] += 100.0  # idle
    assert admission.rate == pytest.approx(2.0 * 0.5, rel=0.01)
    admission.admit([4.0], footprint=1)
    assert admission.wait() == pytest.approx(4.0, rel=0.01)


def test_a_refusal_is_reported() -> None:
    admission = gate(max_wait=1.0)
    refusals: list[None] = []
    admission.on_refused = lambda: refusals.append(None)
    admission.admit([10.0], footprint=1)
    with pytest.raises(Overloaded):
        admission.check()
    assert len(refusals) == 1


def test_speech_does_not_wait_behind_background_work_but_background_waits_for_all() -> None:
    admission = gate(lanes=2, max_wait=10.0)
    transcription = admission.admit([15.0, 15.0], footprint=1, background=True)
    assert admission.wait(background=True) == pytest.approx(15.0)
    assert admission.wait() == 0.0
    with pytest.raises(Overloaded):
        admission.admit([1.0], footprint=1, background=True)
    speech = admission.admit([4.0] * 4, footprint=2)  # speech sees none of the 30 s ahead
    assert admission.wait() == pytest.approx(8.0)
    assert admission.wait(background=True) == pytest.approx(23.0)
    transcription.done(0)
    assert admission.background_work == pytest.approx(15.0)
    transcription.close()
    speech.close()
    assert admission.work == admission.background_work == 0.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def timed_gate(clock: Clock, max_wait: float = 10.0) -> Admission:
    return Admission(lanes=2, max_wait=max_wait, max_queue=256, clock=clock)


def test_a_short_request_is_not_refused_for_long_work_it_will_overtake() -> None:
    """Speech waits only for the work due before it, in the scheduler's order."""
    clock = Clock()
    admission = timed_gate(clock)
    for _ in range(3):  # three long articles: 24 s of work on 2 lanes, a 12 s backlog
        admission.admit_speech([2.0] * 4, footprint=4, whole=True)
    assert admission.wait() == pytest.approx(12.0)
    clock.now += 1.0
    short = admission.admit_speech([0.1], footprint=1, whole=True)  # due before all of them
    assert short.due is not None
    assert admission.wait(due=short.due) == pytest.approx(0.05)  # itself only
    stream = admission.admit_speech([0.2, 0.5], footprint=2, whole=False)  # first audio: now
    assert stream.due == pytest.approx(clock.now + 0.2)
    # Another article waits for everything due before it, the five before it: refused.
    with pytest.raises(Overloaded) as refused:
        admission.admit_speech([2.0] * 4, footprint=4, whole=True)
    assert "about 12 s" in refused.value.message


def test_work_due_by_now_refuses_before_anything_is_parsed() -> None:
    clock = Clock()
    admission = timed_gate(clock, max_wait=5.0)
    admission.admit_speech([3.0] * 4, footprint=4, whole=True)  # 12 s of work: a 6 s backlog
    admission.precheck()  # none of it is due yet: a short request could still overtake it
    clock.now += 5.0 + MAX_OVERTAKE_S + 1.0  # its due has passed: whatever comes now waits
    with pytest.raises(Overloaded):
        admission.precheck()
    with pytest.raises(Overloaded):
        admission.admit_speech([0.1], footprint=1, whole=False)


def test_a_closed_ticket_no_longer_counts_for_anyone() -> None:
    clock = Clock()
    admission = timed_gate(clock)
    ticket = admission.admit_speech([30.0], footprint=1, whole=False)
    clock.now += 31.0  # the stream's first sentence is due: it runs before anything new
    with pytest.raises(Overloaded):
        admission.admit_speech([0.1], footprint=1, whole=True)
    ticket.close()
    admission.admit_speech([0.1], footprint=1, whole=True)
    assert admission.wait(due=clock.now + 100.0) == pytest.approx(0.05)
