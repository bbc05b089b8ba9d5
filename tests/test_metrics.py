"""The Prometheus exporter over real HTTP, its gauges read from a real database."""

from __future__ import annotations

import re
import smtplib
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from mailticket import store
from mailticket.ops import metrics
from mailticket.parse import limits
from mailticket.runtime.core import Core, build_core
from mailticket.store import make_engine
from tests.conftest import ROOT, Clock, build_mail, make_settings
from tests.daemon_thread import DaemonThread

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        body = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_gauges_are_what_the_database_holds(core: Core, clock: Clock) -> None:
    assert core.intake.submit(build_mail(), "smtp").outcome == "stored"  # ack + 2 agents
    assert core.intake.submit(b"", "pipe").outcome == "quarantined"
    clock.advance(hours=25)  # past the normal priority's 24 h first-response time
    with metrics.start_metrics(0, "127.0.0.1", core.engine, core.clock) as server:
        first = scrape(server.port)
        with store.core_transaction(core.engine) as connection:
            connection.execute(
                update(store.OUTBOX).where(store.OUTBOX.c.id == 1).values(state="failed")
            )
        second = scrape(server.port)
    assert value(first, "mailticket_database_up") == 1
    assert [value(first, "mailticket_outbox_messages", state=s) for s in metrics.UNSENT] == [
        3,
        0,
        0,
    ]
    assert value(first, "mailticket_quarantined_mails") == 1
    assert value(first, "mailticket_overdue_tickets") == 1
    assert [value(second, "mailticket_outbox_messages", state=s) for s in metrics.UNSENT] == [
        2,
        1,
        0,
    ]


def test_counters_and_histogram_while_the_database_is_down() -> None:
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none")  # nothing listens
    with metrics.start_metrics(0, "127.0.0.1", engine) as server:
        before = scrape(server.port)
        metrics.observe_intake("smtp", "stored", 0.02, opened=True)
        metrics.observe_intake("imap", "duplicate", 3.0, automatic=True)
        metrics.observe_intake("pipe", "tempfail", 0.001)
        for state, outcome in [
            ("pending", "temporary"),
            ("sent", "sent"),
            ("pending", "uncertain"),
            ("uncertain", "uncertain"),
            ("failed", "permanent"),
            ("failed", "temporary"),  # the last attempt
        ]:
            metrics.observe_delivery(state, outcome)
        metrics.observe_rules_reload(False)
        metrics.observe_reminder("escalation")
        after = scrape(server.port)
    engine.dispose()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - before.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value(after, "mailticket_database_up") == 0
    assert ("mailticket_outbox_messages", (("state", "pending"),)) not in after
    received = "mailticket_mails_received_total"
    assert delta(received, source="smtp", outcome="stored") == 1
    assert delta(received, source="imap", outcome="duplicate") == 1
    assert delta(received, source="pipe", outcome="tempfail") == 1
    assert delta(received, source="imap", outcome="stored") == 0
    assert delta("mailticket_tickets_opened_total") == 1
    assert delta("mailticket_mails_automatic_total", source="imap") == 1
    assert delta("mailticket_mails_automatic_total", source="smtp") == 0
    deliveries = {
        r: delta("mailticket_outbound_deliveries_total", result=r) for r in metrics.DELIVERIES
    }
    assert deliveries == {"sent": 1, "retrying": 1, "uncertain": 2, "failed": 2}
    assert delta("mailticket_rules_reloads_total", result="failed") == 1
    assert delta("mailticket_rules_reloads_total", result="ok") == 0
    assert delta("mailticket_reminders_sent_total", kind="escalation") == 1
    latency = "mailticket_intake_seconds_bucket"
    assert delta(latency, source="smtp", le="0.01") == 0
    assert delta(latency, source="smtp", le="0.025") == 1
    assert delta(latency, source="imap", le="2.5") == 0
    assert delta(latency, source="imap", le="5.0") == 1
    assert delta("mailticket_intake_seconds_count", source="smtp") == 1
    assert delta("mailticket_intake_seconds_sum", source="smtp") == pytest.approx(0.02)


def test_two_exporters_in_one_process_and_close_frees_the_port(core: Core) -> None:
    first = metrics.start_metrics(0, "127.0.0.1", core.engine, core.clock)
    with metrics.start_metrics(0, "127.0.0.1", core.engine, core.clock) as second:
        assert value(scrape(first.port), "mailticket_database_up") == 1
        assert value(scrape(second.port), "mailticket_database_up") == 1
    first.close()
    with pytest.raises(urllib.error.URLError):
        scrape(first.port)


def _documented() -> list[str]:
    """Every metric docs/operations.md documents (its table of metrics)."""
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    names = re.findall(r"^\| `(mailticket_\w+)", text, re.MULTILINE)
    assert len(names) >= 10, "the metrics table in docs/operations.md moved"
    return names


def _moved(before: Samples, after: Samples, name: str) -> bool:
    """A sample of ``name`` (a histogram's _count for a histogram) changed."""
    wanted = {name, f"{name}_count"}
    keys = {k for k in (*before, *after) if k[0] in wanted}
    return any(before.get(k, 0.0) != after.get(k, 0.0) for k in keys)


def test_every_documented_metric_moves_from_the_daemons_own_work(
    tmp_path: Path, db_url: str
) -> None:
    """One daemon, real work only: mails in by SMTP (a request, an autoreply, a mail over a
    limit), its answers out through the outbox (one held back by the global budget), a
    follow-up escalation, a broken rules.yaml."""
    clock = Clock()
    settings = make_settings(
        tmp_path, db_url, metrics={"port": 0}, tickets={"auto_reply_global": "1/1h"},
        scheduler={"sweep_interval": "1s"},
    )  # fmt: skip
    documented = _documented()
    with build_core(settings, clock=clock) as core, DaemonThread(core) as daemon:
        port = daemon.ports["metrics"]
        before = scrape(port)
        with smtplib.SMTP("127.0.0.1", daemon.ports["smtp"], timeout=10) as client:
            for mail in (
                build_mail(message_id="<m1@customer.example>"),
                build_mail(sender="bob@customer.example", message_id="<m2@customer.example>"),
                build_mail(
                    sender="carol@customer.example", subject="Out of office",
                    headers={"Auto-Submitted": "auto-replied"},
                ),
                build_mail(headers={f"X-Many-{n}": "y" for n in range(limits.MAX_HEADER_FIELDS)}),
            ):  # fmt: skip
                client.sendmail("alice@customer.example", ["support@example.org"], mail)
        pending = ("mailticket_outbox_messages", (("state", "pending"),))
        _wait(lambda: scrape(port).get(pending) == 1)  # the held-back ack, until the clock moves
        middle = scrape(port)
        clock.advance(hours=25)  # past the first-response time: escalation, overdue
        (tmp_path / "rules.yaml").write_text("version: 1\nqueues: [\n", encoding="utf-8")

        def moved(name: str) -> bool:
            return _moved(before, middle, name) or _moved(before, scrape(port), name)

        _wait(lambda: all(moved(n) for n in documented if not n.endswith("_up")))
        after = scrape(port)
    still = [
        n
        for n in documented
        if not n.endswith("_up") and not (_moved(before, middle, n) or _moved(before, after, n))
    ]
    assert still == []
    assert value(middle, "mailticket_outbox_messages", state="pending") == 1
    assert (
        value(after, "mailticket_mails_automatic_total", source="smtp")
        - before.get(("mailticket_mails_automatic_total", (("source", "smtp"),)), 0.0)
        == 1
    )
    assert value(after, "mailticket_database_up") == 1  # 0: see the test before


def _wait(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.2)


def test_a_running_daemon_counts_its_deliveries(tmp_path: object, db_url: str) -> None:
    """The counters move from the daemon's own work, not only when called by hand: one
    mail in by SMTP, its acknowledgement and notifications out through the outbox."""
    import smtplib
    import time
    from pathlib import Path

    from mailticket.runtime.core import build_core
    from tests.conftest import make_settings
    from tests.daemon_thread import DaemonThread

    assert isinstance(tmp_path, Path)
    settings = make_settings(tmp_path, db_url, metrics={"port": 0})
    with build_core(settings, clock=Clock()) as core, DaemonThread(core) as daemon:
        port = daemon.ports["metrics"]
        key = ("mailticket_outbound_deliveries_total", (("result", "sent"),))
        before = scrape(port).get(key, 0.0)
        with smtplib.SMTP("127.0.0.1", daemon.ports["smtp"], timeout=10) as client:
            client.sendmail("alice@customer.example", ["support@example.org"], build_mail())
        deadline = time.monotonic() + 20
        while scrape(port).get(key, 0.0) - before < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert scrape(port).get(key, 0.0) - before == 3  # ack, agent_new to two agents
