"""Time-driven work against the real store: reminders, escalations, auto-close, exactly once.

The clock is an argument: days of SLA time pass in milliseconds.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import insert
from sqlmodel import Session, col, select

from mailticket.followup.sweep import FollowupSweep
from mailticket.outbound.outbox import message_bytes
from mailticket.runtime.core import Core, build_core
from mailticket.store import TICKET, make_engine
from mailticket.store.models import Event, Outbox, Ticket
from tests.conftest import Clock, build_mail, last_sent_to, make_settings

RULES = """\
version: 1
queues:
  general: {agents: [agent@example.com]}
  security: {agents: [oncall@example.com], escalate_to: lead@example.com, language: zh}
defaults: {queue: general, priority: normal}
priorities:
  urgent: {first_response: 2h, remind_every: 30m}
  normal: {first_response: 24h}
followup: {remind_requester_after: 3d, close_pending_after: 7d, close_resolved_after: 3d}
rules:
  - name: hacked
    if: {subject: {contains: [hacked, 被盗]}}
    then: {queue: security, priority: urgent}
"""


@pytest.fixture
def followup_core(tmp_path: Path, db_url: str, clock: Clock) -> Iterator[Core]:
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    core = build_core(make_settings(tmp_path, db_url), clock=clock)
    yield core
    core.close()


def sweeper(core: Core) -> FollowupSweep:
    return FollowupSweep(
        core.engine, core.settings.tickets, core.rules, core.renderer, core.signer, core.clock
    )


def sent(core: Core, after: int = 0) -> list[tuple[str, str]]:
    with Session(core.engine) as session:
        rows = session.exec(select(Outbox).where(col(Outbox.id) > after).order_by(col(Outbox.id)))
        return [(o.template, o.recipient) for o in rows]


def last_outbox_id(core: Core) -> int:
    with Session(core.engine) as session:
        rows = session.exec(select(Outbox.id).order_by(col(Outbox.id).desc())).first()
        return rows or 0


def ticket(core: Core, number: int = 1) -> Ticket:
    with Session(core.engine) as session:
        found = session.get(Ticket, number)
        assert found is not None
        return found


def test_a_ticket_walks_through_reminder_escalation_and_auto_close(
    followup_core: Core, clock: Clock
) -> None:
    core, sweep = followup_core, sweeper(followup_core)
    start = clock.now
    core.intake.submit(build_mail(subject="Account hacked!", message_id="<h1@c.example>"), "smtp")
    opened = ticket(core)
    assert (opened.queue, opened.priority, opened.due_at) == (
        "security",
        "urgent",
        start + timedelta(hours=2),
    )
    assert opened.next_action_at == start + timedelta(minutes=90)  # 75 % of 2 h
    assert "2 hours" in opened.due_derivation
    mark = last_outbox_id(core)

    assert sweep.run() == 0
    clock.advance(minutes=90)
    assert sweep.run() == 1
    assert sweep.run() == 0  # recorded: never twice
    assert sent(core, mark) == [("reminder_agent", "oncall@example.com")]

    mark = last_outbox_id(core)
    clock.advance(minutes=30)  # breached
    assert sweep.run() == 1
    clock.advance(minutes=30)  # remind_every while breached
    assert sweep.run() == 1
    assert sent(core, mark) == [("escalation", "lead@example.com")] * 2

    mark = last_outbox_id(core)
    clock.advance(hours=3)  # the daemon was down across six escalation times
    assert sweep.run() == 1
    assert sweep.run() == 0
    assert sent(core, mark) == [("escalation", "lead@example.com")]

    # the agent answers by mail: the first-response clock stops, the pending one starts
    answer = build_mail(
        sender="oncall@example.com",
        subject="Re: [MT-1] Account hacked!",
        body="Locked it.",
        in_reply_to=last_sent_to(core, "oncall@example.com"),
    )
    core.intake.submit(answer, "smtp")
    answered = ticket(core)
    assert (answered.status, answered.first_response_at) == ("pending", clock.now)
    assert answered.next_action_at == clock.now + timedelta(days=3)
    mark = last_outbox_id(core)
    clock.advance(days=2)
    assert sweep.run() == 0  # the first-response clock stopped; requester not due yet
    clock.advance(days=1)
    assert sweep.run() == 1
    clock.advance(days=4)
    assert sweep.run() == 1
    assert sent(core, mark) == [
        ("reminder_requester", "alice@customer.example"),
        ("closed", "alice@customer.example"),
    ]
    closed = ticket(core)
    assert (closed.status, closed.closed_at, closed.next_action_at) == ("closed", clock.now, None)
    with Session(core.engine) as session:
        kinds = [e.kind for e in session.exec(select(Event).where(Event.ticket_number == 1))]
    assert Counter(kinds)["escalation"] == 3
    assert Counter(kinds)["reminder_agent"] == 1
    assert Counter(kinds)["close_pending"] == 1


def test_reminders_thread_under_the_conversation_and_carry_the_tag(
    followup_core: Core, clock: Clock
) -> None:
    from email import message_from_bytes, policy

    core = followup_core
    core.intake.submit(build_mail(subject="账户被盗", message_id="<zh1@c.example>"), "smtp")
    clock.advance(minutes=90)
    assert sweeper(core).run() == 1
    with Session(core.engine) as session:
        row = session.exec(select(Outbox).where(Outbox.template == "reminder_agent")).one()
    mail = message_from_bytes(message_bytes(row), policy=policy.default)
    assert mail["Subject"].startswith("[MT-1] ")
    assert "提醒" in mail["Subject"]  # the security queue's agents read Chinese (its language)
    with Session(core.engine) as session:
        notified = session.exec(select(Outbox).where(Outbox.template == "agent_new")).one()
    # under the notification the agent has (their client never saw the requester's mail)
    assert (mail["In-Reply-To"], mail["References"]) == (notified.message_id,) * 2
    assert mail["Auto-Submitted"] == "auto-generated"
    assert core.signer.verify(mail["Message-ID"]) == 1


def test_an_agents_escalation_is_in_the_agents_language_not_the_requesters(
    followup_core: Core, clock: Clock
) -> None:
    core = followup_core
    core.intake.submit(build_mail(subject="无法登录", message_id="<zh2@c.example>"), "smtp")
    clock.advance(hours=25)
    sweeper(core).run()
    with Session(core.engine) as session:
        rows = {o.template: o for o in session.exec(select(Outbox))}
    subjects = {
        name: str(message_from_bytes(message_bytes(row), policy=policy.default)["Subject"])
        for name, row in rows.items()
    }
    assert "Escalation" in subjects["escalation"]  # general: agents.language, English
    assert "New ticket" in subjects["agent_new"]
    assert "无法登录" in subjects["ack"] and "New" not in subjects["ack"]  # the requester's


def test_a_resolved_ticket_closes_by_itself_without_mail(followup_core: Core, clock: Clock) -> None:
    core = followup_core
    core.intake.submit(build_mail(message_id="<n1@c.example>"), "smtp")
    resolve = build_mail(
        sender="agent@example.com",
        subject="Re: [MT-1] x",
        body="#resolve",
        in_reply_to=last_sent_to(core, "agent@example.com"),
    )
    core.intake.submit(resolve, "smtp")
    resolved = ticket(core)
    assert (resolved.status, resolved.next_action_at) == ("resolved", clock.now + timedelta(days=3))
    mark = last_outbox_id(core)
    clock.advance(days=3)
    assert sweeper(core).run() == 1
    assert ticket(core).status == "closed"
    assert sent(core, mark) == []


def test_a_requester_reply_reopens_and_stops_the_pending_clock(
    followup_core: Core, clock: Clock
) -> None:
    core = followup_core
    core.intake.submit(build_mail(message_id="<p1@c.example>"), "smtp")
    answer = build_mail(
        sender="agent@example.com",
        subject="Re: [MT-1] x",
        body="Try now.",
        in_reply_to=last_sent_to(core, "agent@example.com"),
    )
    core.intake.submit(answer, "smtp")
    assert ticket(core).next_action_at == clock.now + timedelta(days=3)
    clock.advance(days=1)
    core.intake.submit(
        build_mail(subject="Re: [MT-1] Cannot log in", message_id="<p2@c.example>"), "smtp"
    )
    reopened = ticket(core)
    assert (reopened.status, reopened.next_action_at) == ("open", None)
    clock.advance(days=30)
    assert sweeper(core).run() == 0


def test_two_daemons_send_each_reminder_exactly_once(
    followup_core: Core, clock: Clock, db_url: str
) -> None:
    """Two sweepers with their own connections race over the same due tickets."""
    core = followup_core
    count = 300
    due = clock.now - timedelta(minutes=1)
    rows = [
        {
            "subject": f"ticket {n}",
            "status": "new",
            "priority": "urgent",
            "queue": "security",
            "requester": f"user{n}@c.example",
            "tags": "",
            "language": "en",
            "created_at": due - timedelta(minutes=90),
            "updated_at": due,
            "due_at": due + timedelta(minutes=30),
            "next_action_at": due,
            "fields": "{}",
            "due_derivation": "",
        }
        for n in range(count)
    ]
    with core.engine.begin() as connection:
        connection.execute(insert(TICKET), rows)
    engines = [make_engine(db_url) for _ in range(2)]  # as two daemons open it
    sweeps = [
        FollowupSweep(e, core.settings.tickets, core.rules, core.renderer, core.signer, clock)
        for e in engines
    ]
    taken: list[int] = []
    barrier = threading.Barrier(2)

    def work(sweep: FollowupSweep) -> None:
        barrier.wait()
        taken.append(sweep.run(limit=20))

    threads = [threading.Thread(target=work, args=(s,)) for s in sweeps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for engine in engines:
        engine.dispose()
    assert sum(taken) == count
    with Session(core.engine) as session:
        reminders = session.exec(
            select(Outbox.ticket_number).where(Outbox.template == "reminder_agent")
        ).all()
    assert len(reminders) == count and len(set(reminders)) == count
    assert sweeper(core).run() == 0  # nothing more until the escalation time
    clock.advance(minutes=31)
    assert sweeper(core).run() == count


def test_the_daemon_sends_a_reminder_missed_while_it_was_down_once_at_start(
    tmp_path: Path, db_url: str
) -> None:
    """Down across three reminder times: one reminder on start, none per missed interval."""
    import time

    from tests.daemon_thread import DaemonThread

    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    settings = make_settings(tmp_path, db_url, scheduler={"sweep_interval": "1s"})
    clock = Clock()
    with build_core(settings, clock=clock) as core:
        core.intake.submit(build_mail(subject="hacked", message_id="<d1@c.example>"), "smtp")
        mark = last_outbox_id(core)
        clock.advance(hours=5)  # reminder, breach and several escalation times have passed
        with DaemonThread(core):
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not sent(core, mark):
                time.sleep(0.05)
            time.sleep(1.5)  # at least one more sweep runs: it must find nothing
        assert sent(core, mark) == [("escalation", "lead@example.com")]


def test_a_new_priority_moves_the_due_time_and_the_reminders(
    followup_core: Core, clock: Clock
) -> None:
    core, sweep = followup_core, sweeper(followup_core)
    start = clock.now
    core.intake.submit(build_mail(message_id="<u1@c.example>"), "smtp")
    assert ticket(core).due_at == start + timedelta(hours=24)
    clock.advance(minutes=10)
    core.intake.submit(
        build_mail(
            sender="agent@example.com",
            subject="Re: [MT-1] x",
            body="#priority urgent",
            in_reply_to=last_sent_to(core, "agent@example.com"),
        ),
        "smtp",
    )
    raised = ticket(core)
    assert (raised.due_at, raised.next_action_at) == (
        start + timedelta(hours=2),
        start + timedelta(minutes=90),
    )
    mark = last_outbox_id(core)
    clock.advance(minutes=80)
    assert sweep.run() == 1
    assert sent(core, mark) == [("reminder_agent", "agent@example.com")]
