"""Group commit: several mails, one transaction (SQLite and PostgreSQL via db_url)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select

from mailticket.runtime.core import Core, build_core
from mailticket.runtime.writer import Writer
from mailticket.store.models import Inbound, Ticket
from tests.conftest import Clock, build_mail, make_settings


class Commits:
    """Counts the commits and rollbacks an engine really does."""

    def __init__(self, engine: Engine) -> None:
        self.commits = self.rollbacks = 0
        event.listen(engine, "commit", self._commit)
        event.listen(engine, "rollback", self._rollback)

    def _commit(self, _connection: object) -> None:
        self.commits += 1

    def _rollback(self, _connection: object) -> None:
        self.rollbacks += 1


def _inbound(core: Core) -> list[tuple[str, str, int | None]]:
    with Session(core.engine) as session:
        rows = session.exec(select(Inbound).order_by(col(Inbound.id))).all()
        return [(row.message_id, row.state, row.ticket_number) for row in rows]


def test_a_batch_is_one_commit_with_duplicates_and_replies_inside_it(core: Core) -> None:
    first = build_mail(message_id="<first@customer.example>", subject="Printer on fire")
    by_reference = build_mail(
        subject="more details", message_id="<second@customer.example>",
        references="<first@customer.example>",
    )  # fmt: skip
    by_tag = build_mail(subject="Re: [MT-1] Printer on fire", message_id="<third@c.example>")
    other = build_mail(sender="bob@other.example", subject="VPN down", message_id="<vpn@o.example>")
    commits = Commits(core.engine)
    results = core.intake.submit_many([first, first, by_reference, by_tag, other], "smtp")
    assert [(r.outcome, r.ticket) for r in results] == [
        ("stored", 1),
        ("duplicate", None),
        ("stored", 1),  # threads onto the ticket the same transaction opened
        ("stored", 1),
        ("stored", 2),
    ]
    assert (commits.commits, commits.rollbacks) == (1, 0)
    assert [state for _, state, _ in _inbound(core)] == ["processed"] * 4


def test_a_failing_mail_is_quarantined_alone_and_the_rest_commit_together(
    tmp_path: Path, db_url: str, clock: Clock
) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "ack.txt.j2").write_text(  # breaks on one subject only
        'Subject: {% if "boom" in ticket.subject %}{{ ticket.nope }}{% endif %}ok\n\nthanks\n',
        encoding="utf-8",
    )
    settings = make_settings(tmp_path, db_url, tickets={"templates_dir": str(templates)})
    with build_core(settings, clock=clock) as core:
        mails = [
            build_mail(subject="fine one", message_id="<a@c.example>"),
            build_mail(subject="boom", message_id="<b@c.example>"),
            build_mail(subject="fine two", message_id="<c@c.example>"),
        ]
        commits = Commits(core.engine)
        results = core.intake.submit_many(mails, "smtp")
        assert [r.outcome for r in results] == ["stored", "quarantined", "stored"]
        assert "UndefinedError" in results[1].detail
        assert commits.commits == 1  # the first try rolled back, the second committed all
        stored = _inbound(core)
        assert [(mid, state) for mid, state, _ in stored] == [
            ("<a@c.example>", "processed"),
            ("<b@c.example>", "quarantined"),
            ("<c@c.example>", "processed"),
        ]
        with Session(core.engine) as session:  # the failed mail's ticket was undone with it
            numbers = session.exec(select(Ticket.number)).all()
        assert sorted(numbers) == sorted(n for _, _, n in stored if n is not None)
        assert len(numbers) == 2  # (PostgreSQL's sequence may skip the undone numbers)


@pytest.fixture
def writer(core: Core) -> Iterator[Writer]:
    writer = Writer(core.engine, max_batch=4)
    yield writer
    writer.shutdown()


def test_the_writer_takes_what_is_waiting_and_answers_after_the_commit(
    core: Core, writer: Writer, clock: Clock
) -> None:
    gate, entered = threading.Event(), threading.Event()

    def block() -> str:  # a job: while it runs, mails queue up behind it
        entered.set()
        gate.wait(10)
        return "job done"

    job = writer.submit(block)
    assert entered.wait(10)
    mails = [build_mail(subject=f"q{n}", message_id=f"<q{n}@c.example>") for n in range(6)]
    parsed = [
        core.intake.arrival(raw, "smtp", True, core.intake.parse(raw), clock()) for raw in mails
    ]
    futures = [writer.submit_unit(core.intake.unit(arrival)) for arrival in parsed]
    assert not any(future.done() for future in futures)
    commits = Commits(core.engine)
    gate.set()
    results = [future.result(10) for future in futures]
    assert job.result(10) == "job done"
    assert [(r.outcome, r.ticket) for r in results] == [("stored", n) for n in range(1, 7)]
    assert commits.commits == 2  # 6 mails waiting, batches of at most 4


def test_a_stopped_writer_refuses_new_work(core: Core) -> None:
    writer = Writer(core.engine)
    writer.shutdown()
    with pytest.raises(RuntimeError):
        writer.submit(lambda: None)


@pytest.mark.postgres
def test_a_deadlock_between_daemons_is_retried_mail_by_mail(
    tmp_path: Path, postgres_url: str, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Another daemon locks ticket 2, then wants ticket 1, which our batch has locked:
    PostgreSQL breaks the deadlock by failing our batch, which is then stored mail by mail."""
    from tests.conftest import pg_schema

    with (
        pg_schema(postgres_url) as url,
        build_core(make_settings(tmp_path, url), clock=clock) as core,
    ):
        for n in (1, 2):
            core.intake.submit(
                build_mail(subject=f"ticket {n}", message_id=f"<t{n}@c.example>"), "smtp"
            )
        replies = [
            build_mail(subject=f"Re: [MT-{n}] ticket {n}", message_id=f"<r{n}@c.example>")
            for n in (1, 2)
        ]
        results: list[object] = []
        batch = threading.Thread(
            target=lambda: results.extend(core.intake.submit_many(replies, "smtp"))
        )
        with core.engine.connect() as other:
            other.exec_driver_sql("SET deadlock_timeout = '10s'")  # our backend notices first
            other.exec_driver_sql("SELECT number FROM ticket WHERE number = 2 FOR UPDATE")
            batch.start()
            _wait_for_lock_wait(other)  # the batch holds ticket 1 and waits for ticket 2
            other.exec_driver_sql("SELECT number FROM ticket WHERE number = 1 FOR UPDATE")
            other.commit()  # once PostgreSQL has failed the batch (deadlock_timeout 1 s)
        batch.join(30)
        assert [(r.outcome, r.ticket) for r in results] == [("stored", 1), ("stored", 2)]  # type: ignore[attr-defined]
        assert "one by one" in caplog.text
        with Session(core.engine) as session:
            stored = session.exec(select(Inbound.message_id)).all()
        assert sorted(stored) == [
            "<r1@c.example>",
            "<r2@c.example>",
            "<t1@c.example>",
            "<t2@c.example>",
        ]


def _wait_for_lock_wait(holder: Connection) -> None:
    """Until a backend waits for a lock that ``holder``'s backend holds."""
    deadline = time.monotonic() + 30
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
    )
    while time.monotonic() < deadline:
        holder.exec_driver_sql("SELECT pg_stat_clear_snapshot()")  # else frozen per transaction
        if holder.exec_driver_sql(query).scalar():
            return
        time.sleep(0.02)
    raise AssertionError("the batch never waited for the lock")
