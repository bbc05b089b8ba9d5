"""The daemon's warm-up: its rehearsal takes the real intake paths and leaves no trace.

What it must keep: a rehearsal on SQLite stores the sample mails (new tickets in English
and Chinese, a reply threaded onto the first) and rolls all of it back, so the first
real ticket is still number 1; on PostgreSQL, whose sequences a rollback does not undo,
nothing is rehearsed. The daemon opens its listener only after its store is ready, and
its start-up objects are exempt from full collections while it runs.
"""

from __future__ import annotations

import gc

from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine

from mailticket.parse.mail import parse
from mailticket.runtime.core import Core
from mailticket.runtime.store_process import StoreProcess
from mailticket.runtime.warm_up import sample_mails
from mailticket.settings import Settings
from mailticket.store.models import Event, Inbound, Outbox, Ticket
from tests.conftest import build_mail
from tests.daemon_thread import DaemonThread


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table.__tablename__: connection.execute(
                select(func.count()).select_from(table)
            ).scalar_one()
            for table in (Ticket, Inbound, Outbox, Event)
        }


def test_the_samples_take_the_common_paths() -> None:
    first, chinese, reply = (parse(raw) for raw in sample_mails())
    assert (first.language, chinese.language) == ("en", "zh")
    assert [a.filename for a in chinese.attachments] == ["日志.pdf"]
    assert "打印机" in chinese.text and not chinese.text.startswith("<")  # HTML only
    assert reply.in_reply_to == (first.message_id,)
    assert sample_mails()[0] != sample_mails()[0]  # fresh Message-IDs each time


def test_a_rehearsal_stores_the_samples_then_leaves_no_trace(core: Core) -> None:
    statements: list[str] = []

    def executed(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    before = counts(core.engine)
    event.listen(core.engine, "before_cursor_execute", executed)
    results = core.intake.rehearse(sample_mails())
    event.remove(core.engine, "before_cursor_execute", executed)
    after = counts(core.engine)
    first = core.intake.submit(build_mail(subject="The first real mail"), "smtp")

    assert after == before
    if core.engine.dialect.name == "postgresql":  # a rollback keeps sequences moved
        assert results == [] and statements == []
        return
    assert [r.outcome for r in results] == ["stored"] * 3
    assert results[2].ticket == results[0].ticket != results[1].ticket  # the reply threaded
    assert any(s.startswith("INSERT INTO outbox") for s in statements)  # the answers made
    assert first.ticket == 1  # no gap: the rehearsal's numbers were rolled back


def test_the_store_process_is_ready_when_it_has_started(core: Core, settings: Settings) -> None:
    store = StoreProcess(settings, core.rules)
    try:
        assert not store.ready
        store.start()
        assert store.ready and store.pid is not None
    finally:
        store.close()


def test_the_daemon_exempts_its_start_up_objects_from_full_collections(core: Core) -> None:
    assert gc.get_freeze_count() == 0
    with DaemonThread(core):
        frozen = gc.get_freeze_count()
    assert frozen > 10_000  # modules, engine, templates
    assert gc.get_freeze_count() == 0  # given back at stop
