"""The follow-up state machine, walked with a hand-moved clock over business hours."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from mailticket.followup.business_calendar import CalendarSpec, add_business_time
from mailticket.followup.clocks import (
    Action,
    ActionKind,
    NextStep,
    Policy,
    TicketClock,
    decide,
    next_due,
    record,
)

CAL = CalendarSpec.model_validate(
    {"timezone": "Asia/Shanghai", "hours": {"mon-fri": "09:00-18:00"}}
)


@dataclass(frozen=True)
class Priority:
    first_response: timedelta
    remind_every: timedelta | None = None


@dataclass(frozen=True)
class Followup:
    remind_requester_after: timedelta = timedelta(days=3)
    close_pending_after: timedelta = timedelta(days=7)
    close_resolved_after: timedelta = timedelta(days=3)


URGENT = Priority(first_response=timedelta(hours=2), remind_every=timedelta(minutes=30))
POLICY = Policy(priority=URGENT, followup=Followup(), calendar=CAL)


def at(text: str) -> datetime:
    """A Shanghai wall-clock time, e.g. "2026-11-02 10:30"."""
    return datetime.fromisoformat(text).replace(tzinfo=CAL.zone)


def opened(created: str = "2026-11-02 09:00", priority: Priority = URGENT) -> TicketClock:
    start = at(created)
    due = add_business_time(start, priority.first_response, CAL).at
    return TicketClock(status="new", created_at=start, due_at=due)


def sweep(
    clock: TicketClock, now: datetime, policy: Policy = POLICY
) -> tuple[TicketClock, NextStep]:
    """What the sweep does with a claimed ticket: decide, then record the action."""
    decision = decide(clock, policy, now)
    if decision.action:
        clock = record(clock, decision.action, now)
    return clock, decision


def kind(decision: NextStep) -> ActionKind | None:
    return decision.action.kind if decision.action else None


def test_a_ticket_walks_through_every_step() -> None:
    clock = opened()  # Mon 09:00, urgent: due 11:00, reminder at 10:30
    assert next_due(clock, POLICY) == at("2026-11-02 10:30")

    clock, decision = sweep(clock, at("2026-11-02 10:29"))
    assert decision == NextStep(None, at("2026-11-02 10:30"))

    clock, decision = sweep(clock, at("2026-11-02 10:30:20"))
    assert kind(decision) is ActionKind.REMIND_AGENTS
    assert decision.next_check == at("2026-11-02 11:00")
    clock, again = sweep(clock, at("2026-11-02 10:30:20"))  # a second daemon, same instant
    assert again.action is None

    clock, decision = sweep(clock, at("2026-11-02 11:00:10"))
    assert kind(decision) is ActionKind.ESCALATE
    assert decision.next_check == at("2026-11-02 11:30:10")

    clock, decision = sweep(clock, at("2026-11-02 11:30:30"))
    assert kind(decision) is ActionKind.ESCALATE
    assert decision.next_check == at("2026-11-02 12:00:30")

    # down from 11:31 to 13:45: the escalations at 12:00, 12:30, 13:00 and 13:30 become one
    clock, decision = sweep(clock, at("2026-11-02 13:45"))
    assert kind(decision) is ActionKind.ESCALATE
    assert decision.next_check == at("2026-11-02 14:15")
    clock, again = sweep(clock, at("2026-11-02 13:45"))
    assert again == NextStep(None, at("2026-11-02 14:15"))

    # an agent answers at 14:00: the first-response clock stops, the requester's starts
    clock = replace(
        clock,
        status="pending",
        first_response_at=at("2026-11-02 14:00"),
        pending_since=at("2026-11-02 14:00"),
    )
    clock, decision = sweep(clock, at("2026-11-02 14:20"))
    assert decision.action is None  # no escalation at 14:15
    remind_at = at("2026-11-12 14:00")  # 72 business hours: 4 + 7 x 9 + 5
    assert decision.next_check == remind_at

    clock, decision = sweep(clock, remind_at)
    assert kind(decision) is ActionKind.REMIND_REQUESTER
    assert decision.action is not None
    assert decision.action.reason.startswith(
        "pending since Mon 2026-11-02 14:00, 72 business hours"
    )
    close_at = at("2026-11-27 11:00")  # 168 business hours: 4 + 18 x 9 + 2
    assert decision.next_check == close_at
    clock, again = sweep(clock, remind_at + timedelta(hours=1))
    assert again.action is None

    clock, decision = sweep(clock, close_at)
    assert kind(decision) is ActionKind.CLOSE_PENDING
    assert decision.action is not None
    assert decision.action.kind.template == "closed"
    assert clock.status == "closed"
    assert decision.next_check is None
    assert next_due(clock, POLICY) is None


def test_resolved_is_closed_after_close_resolved_after() -> None:
    clock = replace(
        opened(),
        status="resolved",
        first_response_at=at("2026-11-02 10:00"),
        resolved_at=at("2026-11-06 17:00"),
    )
    close_at = at("2026-11-18 17:00")  # 72 business hours: 1 + 7 x 9 + 8
    assert next_due(clock, POLICY) == close_at
    clock, decision = sweep(clock, close_at - timedelta(seconds=1))
    assert decision.action is None
    clock, decision = sweep(clock, close_at)
    assert decision.action == Action(ActionKind.CLOSE_RESOLVED, close_at, decision.action.reason)
    assert decision.action.kind.template is None
    assert clock.status == "closed"


def test_downtime_across_reminder_and_breach_sends_only_the_escalation() -> None:
    clock, decision = sweep(opened(), at("2026-11-02 12:00"))
    assert kind(decision) is ActionKind.ESCALATE
    assert decision.action is not None
    assert decision.action.due == at("2026-11-02 11:00")
    assert decision.next_check == at("2026-11-02 12:30")
    clock, decision = sweep(clock, at("2026-11-02 12:10"))
    assert decision.action is None  # the moot reminder never follows


def test_downtime_past_the_close_sends_only_the_close() -> None:
    clock = replace(opened(), status="pending", first_response_at=at("2026-11-02 10:00"))
    clock = replace(clock, pending_since=at("2026-11-02 10:00"))
    clock, decision = sweep(clock, at("2026-12-31 12:00"))
    assert kind(decision) is ActionKind.CLOSE_PENDING
    assert clock.requester_reminded_at is None


def test_escalations_repeat_in_business_time() -> None:
    clock = replace(opened("2026-11-06 15:00"), escalated_at=at("2026-11-06 17:50"))
    # Friday 17:50 + 30 business minutes: 10 on Friday, 20 on Monday
    assert next_due(clock, POLICY) == at("2026-11-09 09:20")


def test_without_remind_every_one_escalation() -> None:
    normal = Priority(first_response=timedelta(hours=24))
    policy = Policy(priority=normal, followup=Followup(), calendar=CAL)
    clock, decision = sweep(opened(priority=normal), at("2026-11-05 16:00"), policy)
    assert kind(decision) is ActionKind.ESCALATE
    assert decision.next_check is None
    orphan = Policy(priority=None, followup=Followup(), calendar=CAL)  # priority gone from rules
    assert sweep(clock, at("2026-11-30 10:00"), orphan)[1] == NextStep(None, None)


def test_a_later_due_time_rearms_reminder_and_escalation() -> None:
    """The priority went from urgent to normal after the escalation: a new deadline."""
    clock, _ = sweep(opened(), at("2026-11-02 11:05"))
    assert clock.escalated_at == at("2026-11-02 11:05")
    later = add_business_time(clock.created_at, timedelta(hours=24), CAL).at
    clock = replace(clock, due_at=later)
    normal = Policy(
        priority=Priority(first_response=timedelta(hours=24)), followup=Followup(), calendar=CAL
    )
    assert next_due(clock, normal) == at("2026-11-03 18:00")  # 18 business hours
    clock, decision = sweep(clock, at("2026-11-03 18:00"), normal)
    assert kind(decision) is ActionKind.REMIND_AGENTS
    assert decision.next_check == later


def test_each_pending_period_gets_its_own_requester_reminder() -> None:
    clock = replace(opened(), status="pending", first_response_at=at("2026-11-02 10:00"))
    clock = replace(clock, pending_since=at("2026-11-02 10:00"))
    clock, decision = sweep(clock, at("2026-11-12 10:00"))
    assert kind(decision) is ActionKind.REMIND_REQUESTER
    # the requester answers, an agent replies again: pending anew
    clock = replace(clock, status="pending", pending_since=at("2026-11-12 15:00"))
    clock, decision = sweep(clock, at("2026-11-12 16:00"))
    assert decision == NextStep(None, at("2026-11-24 15:00"))
    clock, decision = sweep(clock, at("2026-11-24 15:00"))
    assert kind(decision) is ActionKind.REMIND_REQUESTER


def test_reminder_not_before_close_is_skipped() -> None:
    terms = Followup(
        remind_requester_after=timedelta(days=7), close_pending_after=timedelta(days=7)
    )
    policy = Policy(priority=URGENT, followup=terms, calendar=CAL)
    clock = replace(opened(), status="pending", first_response_at=at("2026-11-02 10:00"))
    clock = replace(clock, pending_since=at("2026-11-02 10:00"))
    clock, decision = sweep(clock, at("2026-12-31 10:00"), policy)
    assert kind(decision) is ActionKind.CLOSE_PENDING


def test_clocks_that_do_not_run() -> None:
    answered = replace(opened(), status="open", first_response_at=at("2026-11-02 10:00"))
    imported = replace(opened(), due_at=None)
    closed = replace(opened(), status="closed")
    for clock in (answered, imported, closed):
        assert sweep(clock, at("2027-06-01 10:00")) == (clock, NextStep(None, None))


def test_from_row_reads_the_columns_by_name() -> None:
    clock = opened()
    row = SimpleNamespace(number=7, subject="hi", **{f: getattr(clock, f) for f in clock.__slots__})
    assert TicketClock.from_row(row) == clock


def test_reasons_are_readable() -> None:
    clock, decision = sweep(opened(), at("2026-11-02 10:31"))
    assert decision.action is not None
    assert decision.action.reason == (
        "75 % of 2 business hours used: received Mon 2026-11-02 09:00, "
        "1 business hour 30 minutes → Mon 2026-11-02 10:30 (Asia/Shanghai)"
    )
    _, decision = sweep(clock, at("2026-11-02 11:01"))
    assert decision.action is not None
    assert decision.action.reason == "first response due Mon 2026-11-02 11:00"


@settings(max_examples=100)
@given(
    created=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
    ),
    gaps=st.lists(st.integers(min_value=0, max_value=48 * 60), min_size=1, max_size=40),
)
def test_sweeps_at_any_times_send_each_step_once_and_on_time(
    created: datetime, gaps: list[int]
) -> None:
    """Whenever the sweeps come, next_check is exact and nothing is sent twice."""
    clock = replace(
        opened(),
        created_at=created,
        due_at=add_business_time(created, URGENT.first_response, CAL).at,
    )
    now, sent = created, []
    for gap in gaps:
        now += timedelta(minutes=gap)
        clock, decision = sweep(clock, now)
        if decision.action:
            sent.append((decision.action.kind, now))
        if decision.next_check is not None:
            assert (
                decide(clock, POLICY, decision.next_check - timedelta(microseconds=1)).action
                is None
            )
            assert decide(clock, POLICY, decision.next_check).action is not None
    kinds = [k for k, _ in sent]
    assert kinds.count(ActionKind.REMIND_AGENTS) <= 1
    assert kinds == sorted(kinds, key=[ActionKind.REMIND_AGENTS, ActionKind.ESCALATE].index)
    escalations = [when for k, when in sent if k is ActionKind.ESCALATE]
    for before, after in pairwise(escalations):
        assert add_business_time(before, URGENT.remind_every or timedelta(0), CAL).at <= after
