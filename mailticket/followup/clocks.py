"""The follow-up state machine: which time-driven action a ticket needs now, if any.

Pure: a ticket's clock state, its terms from rules.yaml and ``now`` in; at most one
action and the time of the next check out. The sweep claims a ticket whose
``next_action_at <= now`` (``SELECT … FOR UPDATE SKIP LOCKED``), calls ``decide``,
writes the action's outbox row, ``record``'s column and ``next_action_at =
NextStep.next_check`` in one transaction. Each action is recorded as a timestamp
compared with the time the action fell due, so nothing needs resetting when a ticket
enters ``pending`` again or its due time moves, and a daemon that was down sends
one mail for all the intervals it missed.

Chains, each step due at a business-time offset (see business_calendar):
- ``new``/``open`` without an agent's answer: agent reminder at 75 % of the time from
  ``created_at`` to ``due_at``, escalation at ``due_at``, again every ``remind_every``
  after the last one; ``first_response_at`` stops the chain.
- ``pending``: requester reminder ``remind_requester_after`` after ``pending_since``,
  close ``close_pending_after`` after it.
- ``resolved``: close ``close_resolved_after`` after ``resolved_at``.
When several steps of a chain are overdue, only the furthest is taken: a breach makes
the reminder before it moot, a close the requester reminder.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from mailticket.decide.states import TicketStatus
from mailticket.followup.business_calendar import (
    CalendarSpec,
    add_business_time,
    business_time_between,
    local_label,
)
from mailticket.followup.due_derivation import describe_duration

CLOCK_RUNS = frozenset({"new", "open"})  # statuses where the first-response clock runs


class PriorityTerms(Protocol):
    """The part of rules.yaml's ``priorities.<name>`` the follow-up reads."""

    @property
    def remind_every(self) -> timedelta | None: ...


class FollowupTerms(Protocol):
    """rules.yaml's ``followup``."""

    @property
    def remind_requester_after(self) -> timedelta: ...
    @property
    def close_pending_after(self) -> timedelta: ...
    @property
    def close_resolved_after(self) -> timedelta: ...


@dataclass(frozen=True, slots=True)
class Policy:
    """What rules.yaml says for one ticket (``priority`` None: no longer in the file)."""

    priority: PriorityTerms | None
    followup: FollowupTerms
    calendar: CalendarSpec


class ActionKind(StrEnum):
    REMIND_AGENTS = "reminder_agent"  # to the queue's agents
    ESCALATE = "escalation"  # to the queue's escalate_to
    REMIND_REQUESTER = "reminder_requester"
    CLOSE_PENDING = "close_pending"  # pending -> closed, template `closed`
    CLOSE_RESOLVED = "close_resolved"  # resolved -> closed

    @property
    def template(self) -> str | None:
        """The mail the action sends; closing a resolved ticket sends none."""
        return {"close_pending": "closed", "close_resolved": None}.get(self.value, self.value)


@dataclass(frozen=True, slots=True)
class TicketClock:
    """The ticket columns the follow-up reads; the names are the columns' names."""

    status: TicketStatus
    created_at: datetime
    due_at: datetime | None = None  # first-response due time, set by the intake
    first_response_at: datetime | None = None  # the agent's first public reply
    pending_since: datetime | None = None  # when the ticket last became pending
    resolved_at: datetime | None = None
    agent_reminded_at: datetime | None = None
    escalated_at: datetime | None = None  # the last escalation
    requester_reminded_at: datetime | None = None

    @classmethod
    def from_row(cls, row: object) -> TicketClock:
        """From any object with these attributes, e.g. a ``models.Ticket``."""
        values = {field.name: getattr(row, field.name) for field in fields(cls)}
        return cls(**{**values, "status": TicketStatus(values["status"])})


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    due: datetime  # when it fell due
    reason: str  # for the ticket's event log


@dataclass(frozen=True, slots=True)
class NextStep:
    action: Action | None
    next_check: datetime | None  # after the action is recorded; None: nothing more to do


def decide(clock: TicketClock, policy: Policy, now: datetime) -> NextStep:
    """The one action due at ``now`` (the furthest overdue step) and the next check."""
    steps = schedule(clock, policy)
    due = [action for action in steps if action.due <= now]
    if not due:
        return NextStep(None, min((action.due for action in steps), default=None))
    action = due[-1]
    return NextStep(action, next_due(record(clock, action, now), policy))


def record(clock: TicketClock, action: Action, now: datetime) -> TicketClock:
    """The clock after ``action`` was taken at ``now``: what the sweep writes back."""
    match action.kind:
        case ActionKind.REMIND_AGENTS:
            return replace(clock, agent_reminded_at=now)
        case ActionKind.ESCALATE:
            return replace(clock, escalated_at=now)
        case ActionKind.REMIND_REQUESTER:
            return replace(clock, requester_reminded_at=now)
        case _:
            return replace(clock, status=TicketStatus.CLOSED)


def next_due(clock: TicketClock, policy: Policy) -> datetime | None:
    """When the next action falls due: the value of the indexed ``next_action_at``."""
    return min((action.due for action in schedule(clock, policy)), default=None)


def schedule(clock: TicketClock, policy: Policy) -> list[Action]:
    """The steps still to take, in chain order (which is also time order)."""
    if clock.status in CLOCK_RUNS and clock.first_response_at is None and clock.due_at:
        return _first_response(clock, clock.due_at, policy)
    if clock.status == "pending" and clock.pending_since:
        return _pending(clock, clock.pending_since, policy)
    if clock.status == "resolved" and clock.resolved_at:
        close = add_business_time(
            clock.resolved_at,
            policy.followup.close_resolved_after,
            policy.calendar,
            event="resolved",
        )
        return [Action(ActionKind.CLOSE_RESOLVED, close.at, close.derivation)]
    return []


def _first_response(clock: TicketClock, due_at: datetime, policy: Policy) -> list[Action]:
    cal = policy.calendar
    if _done(clock.escalated_at, due_at):
        every = policy.priority.remind_every if policy.priority else None
        if every is None:
            return []
        again = add_business_time(clock.escalated_at or due_at, every, cal, event="escalated")
        reason = f"first response overdue since {local_label(due_at, cal)}; {again.derivation}"
        return [Action(ActionKind.ESCALATE, again.at, reason)]
    escalate = Action(ActionKind.ESCALATE, due_at, f"first response due {local_label(due_at, cal)}")
    window = business_time_between(clock.created_at, due_at, cal)
    remind = add_business_time(clock.created_at, window * 3 / 4, cal, event="received")
    if remind.at >= due_at or _done(clock.agent_reminded_at, remind.at):
        return [escalate]
    reason = f"75 % of {describe_duration(window)} used: {remind.derivation}"
    return [Action(ActionKind.REMIND_AGENTS, remind.at, reason), escalate]


def _pending(clock: TicketClock, since: datetime, policy: Policy) -> list[Action]:
    terms, cal = policy.followup, policy.calendar
    close = add_business_time(since, terms.close_pending_after, cal, event="pending since")
    actions = [Action(ActionKind.CLOSE_PENDING, close.at, close.derivation)]
    remind = add_business_time(since, terms.remind_requester_after, cal, event="pending since")
    if remind.at < close.at and not _done(clock.requester_reminded_at, remind.at):
        actions.insert(0, Action(ActionKind.REMIND_REQUESTER, remind.at, remind.derivation))
    return actions


def _done(taken_at: datetime | None, fell_due: datetime) -> bool:
    """A step counts as taken when it was recorded at or after the time it fell due."""
    return taken_at is not None and taken_at >= fell_due
