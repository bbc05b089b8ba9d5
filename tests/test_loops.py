"""Mail loops settle: the RFC 3834 guard plus budgets for automatic answers.

Two mailticket instances, or mailticket and a vacation responder that ignores every rule,
mail each other through their real intakes and outboxes (a pump hands each one's outgoing
mail to the other) until nothing new comes out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from mailticket.ops.status import collect
from mailticket.outbound.outbox import message_bytes
from mailticket.runtime.core import Core, build_core
from mailticket.store.models import Event, Outbox, Ticket
from tests.conftest import Clock, build_mail, last_sent_to, make_settings

Responder = Callable[[bytes], bytes | None]


def _instance(tmp_path: Path, clock: Clock, name: str, **tickets: object) -> Core:
    root = tmp_path / name
    root.mkdir()
    settings = make_settings(
        root,
        f"sqlite:///{root / 'db.sqlite'}",
        tickets={"support_address": f"support@{name}.example", **tickets},
    )
    return build_core(settings, clock=clock)


@pytest.fixture
def mailticket_a(tmp_path: Path, clock: Clock) -> Iterator[Core]:
    core = _instance(tmp_path, clock, "a")
    yield core
    core.close()


def _outgoing(core: Core, after: int) -> list[Outbox]:
    with Session(core.engine) as session:
        query = select(Outbox).where(col(Outbox.id) > after).order_by(col(Outbox.id))
        return list(session.exec(query).all())


def pump(core: Core, address: str, respond: Responder, clock: Clock, rounds: int = 50) -> int:
    """Hand ``core``'s mail for ``address`` to ``respond`` and its answers back, a minute
    apart, until nothing more is said; returns how many mails ``core`` sent to ``address``."""
    seen, sent = 0, 0
    for _ in range(rounds):
        fresh = _outgoing(core, seen)
        if not fresh:
            return sent
        seen = fresh[-1].id or seen
        for row in fresh:
            if row.recipient != address:
                continue
            sent += 1
            answer = respond(message_bytes(row))
            if answer is not None:
                clock.advance(minutes=1)
                core.intake.submit(answer, "smtp")
    raise AssertionError(f"still mailing each other after {rounds} rounds ({sent} mails)")


def naive_vacation(address: str) -> Responder:
    """Answers every mail, ignoring Auto-Submitted and Precedence, with a fresh subject and no
    In-Reply-To (so nothing threads it), and sets no header that marks it automatic."""
    counter = iter(range(10_000))

    def respond(raw: bytes) -> bytes:
        received = message_from_bytes(raw, policy=policy.default)
        return build_mail(
            sender=address,
            to=str(received["From"]),
            subject=f"Away until Monday (#{next(counter)})",
            body="I am out of the office.",
        )

    return respond


def other_instance(other: Core) -> Responder:
    """The other mailticket: the mail goes through its intake, its answer comes back."""
    last = [0]

    def respond(raw: bytes) -> bytes | None:
        other.intake.submit(raw, "smtp")
        answers = _outgoing(other, last[0])
        last[0] = answers[-1].id or last[0] if answers else last[0]
        back = [message_bytes(r) for r in answers if r.recipient == "support@a.example"]
        return back[0] if back else None

    return respond


def test_two_instances_mailing_each_other_settle(
    tmp_path: Path, clock: Clock, mailticket_a: Core
) -> None:
    b = _instance(tmp_path, clock, "b")
    try:
        # somebody at B writes to A from B's own support address (a forward, a test...)
        first = build_mail(sender="support@b.example", to="support@a.example", subject="hello")
        mailticket_a.intake.submit(first, "smtp")
        sent = pump(mailticket_a, "support@b.example", other_instance(b), clock)
    finally:
        b.close()
    # A acknowledges once; B sees Auto-Submitted: auto-replied and answers nothing
    assert sent == 1


def test_a_naive_vacation_responder_is_paused_after_a_burst(
    mailticket_a: Core, clock: Clock
) -> None:
    core = mailticket_a
    vacation = "boss@customer.example"
    core.intake.submit(build_mail(sender=vacation, subject="Please call me"), "smtp")
    sent = pump(core, vacation, naive_vacation(vacation), clock)

    burst = core.settings.tickets.auto_reply_burst
    assert sent == burst.limit  # then the budget trips: no more answers, the loop ends
    health = collect(core)
    [(address, until, reason)] = health.paused
    assert address == vacation and "auto_reply_burst 5/10m" in reason
    assert until == clock() + core.settings.tickets.auto_reply_pause
    assert any(line.startswith(f"paused     {vacation} until") for line in health.lines())
    with Session(core.engine) as session:
        tickets = session.exec(select(Ticket)).all()
        paused = session.exec(select(Event).where(Event.kind == "paused")).all()
    assert len(tickets) == burst.limit + 1  # every mail is stored: nothing is lost
    assert [e.ticket_number for e in paused] == [burst.limit + 1]


def test_the_pause_ends_and_answers_resume(mailticket_a: Core, clock: Clock) -> None:
    core = mailticket_a
    vacation = "boss@customer.example"
    core.intake.submit(build_mail(sender=vacation, subject="Please call me"), "smtp")
    pump(core, vacation, naive_vacation(vacation), clock)
    clock.advance(hours=2)  # past auto_reply_pause and the burst window
    mark = _outgoing(core, 0)[-1].id or 0
    core.intake.submit(build_mail(sender=vacation, subject="Back now: real question"), "smtp")
    assert [(r.template, r.recipient) for r in _outgoing(core, mark) if r.automatic] == [
        ("ack", vacation)
    ]
    assert collect(core).paused == []


def test_per_ticket_budget_stops_repeated_notices_on_one_ticket(
    mailticket_a: Core, clock: Clock
) -> None:
    core = mailticket_a
    core.intake.submit(build_mail(subject="flip-flop"), "smtp")
    for _ in range(5):
        clock.advance(minutes=1)
        for command in ("#resolve", "#reopen"):
            agent = build_mail(
                sender="agent@example.com",
                subject="Re: [MT-1] x",
                body=command,
                in_reply_to=last_sent_to(core, "agent@example.com"),
            )
            core.intake.submit(agent, "smtp")
    with Session(core.engine) as session:
        told = session.exec(select(Outbox).where(Outbox.template == "resolved")).all()
        events = [e.detail for e in session.exec(select(Event).where(Event.kind == "paused"))]
    # the ack counts too: 3 automatic answers per recipient and ticket per hour
    assert len(told) == core.settings.tickets.auto_reply_per_ticket.limit - 1
    assert len(events) == 1 and "auto_reply_per_ticket 3/1h" in events[0]


def test_global_budget_shows_as_a_problem(tmp_path: Path, clock: Clock) -> None:
    core = _instance(tmp_path, clock, "g", auto_reply_global="3/1m")
    try:
        for n in range(5):
            core.intake.submit(build_mail(sender=f"user{n}@customer.example"), "smtp")
        acks = [r for r in _outgoing(core, 0) if r.template == "ack"]
        # every requester learns their number: past the budget, later, never not
        assert [r.recipient for r in acks] == [f"user{n}@customer.example" for n in range(5)]
        delayed = [r.recipient for r in acks if r.next_attempt_at > r.created_at]
        assert delayed == ["user3@customer.example", "user4@customer.example"]
        health = collect(core)
        assert health.automatic_budget == (5, "3/1m")
        assert any("global budget for automatic answers (3/1m)" in p for p in health.problems)
        assert health.paused == []  # nobody's fault in particular: nobody is paused
        clock.advance(minutes=2)
        assert not any("global budget" in p for p in collect(core).problems)
    finally:
        core.close()


def test_budget_settings_are_validated(tmp_path: Path) -> None:
    from mailticket.errors import ConfigError

    with pytest.raises(ConfigError, match="auto_reply_burst"):
        make_settings(tmp_path, "sqlite:///x.db", tickets={"auto_reply_burst": "many"})
    settings = make_settings(tmp_path, "sqlite:///x.db", tickets={"auto_reply_burst": "2/30s"})
    assert (settings.tickets.auto_reply_burst.limit, str(settings.tickets.auto_reply_burst)) == (
        2,
        "2/30s",
    )
