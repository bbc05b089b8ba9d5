"""The command line as admins and MTAs use it: real processes, real exit codes."""

from __future__ import annotations

import base64
import json
import mailbox
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import Session, col, create_engine, select

from mailticket import store
from mailticket.store.models import Inbound
from tests.conftest import build_mail, make_settings, pretend_daemon_running


def run(
    tmp_path: Path,
    *args: str,
    stdin: bytes = b"",
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "mailticket", "-c", str(tmp_path / "mailticket.toml"), *args],
        input=stdin,
        capture_output=True,
        cwd=tmp_path,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def configured(tmp_path: Path, db_url: str) -> Path:
    make_settings(tmp_path, db_url)
    engine = store.make_engine(db_url)  # `db upgrade`, as an admin runs it first, in-process
    store.upgrade(engine)
    engine.dispose()
    return tmp_path


def test_ingest_from_stdin_then_show_json(configured: Path) -> None:
    first = run(configured, "ingest", stdin=build_mail(message_id="<a1@customer.example>"))
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(b"stored <a1@customer.example> MT-1")
    again = run(configured, "ingest", stdin=build_mail(message_id="<a1@customer.example>"))
    assert (again.returncode, again.stdout.split()[0]) == (0, b"duplicate")
    shown = run(configured, "tickets", "show", "MT-1", "--json")
    detail = json.loads(shown.stdout)
    assert set(detail) >= {
        "number",
        "subject",
        "status",
        "priority",
        "queue",
        "requester",
        "assignee",
        "tags",
        "created_at",
        "updated_at",
        "due_at",
        "messages",
    }
    assert detail["messages"][0]["direction"] == "in"
    assert detail["messages"][0]["message_id"] == "<a1@customer.example>"
    assert {m["kind"] for m in detail["messages"][1:]} == {"ack", "agent_new"}
    listed = json.loads(run(configured, "tickets", "list", "--json").stdout)
    assert [t["number"] for t in listed] == [1]


def test_ingest_file_argument(configured: Path) -> None:
    mail = configured / "one.eml"
    mail.write_bytes(build_mail())
    assert run(configured, "ingest", str(mail)).returncode == 0


def _stored_raws(db_url: str) -> list[bytes]:
    engine = create_engine(db_url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(Inbound.raw).order_by(col(Inbound.id))).all())
    finally:
        engine.dispose()


def test_ingest_writes_the_envelope_as_postfix_pipe_passes_it(
    configured: Path, db_url: str
) -> None:
    """``--sender=${sender} --recipient=${recipient}``: the null sender's mail (an empty
    ${sender}) is automatic and gets no answer; the other is a request and does."""
    notice = build_mail(sender="gw@relay.example", message_id="<n1@relay.example>")
    request = build_mail(sender="bob@customer.example", message_id="<r1@customer.example>")
    notice, request = (mail.replace(b"\r\n", b"\n") for mail in (notice, request))  # a pipe

    null = run(configured, "ingest", "--sender=", "--recipient=support@example.org", stdin=notice)
    assert null.returncode == 0, null.stderr
    person = run(
        configured,
        *("ingest", "--sender", "bob@customer.example"),
        *("--recipient", "support@example.org", "--recipient", "help@example.org"),
        stdin=request,
    )
    assert person.returncode == 0, person.stderr

    assert _stored_raws(db_url) == [
        b"Return-Path: <>\nDelivered-To: support@example.org\n" + notice,
        b"Return-Path: <bob@customer.example>\nDelivered-To: support@example.org\n"
        b"Delivered-To: help@example.org\n" + request,
    ]
    outbox = json.loads(run(configured, "outbox", "list", "--json").stdout)
    assert [row["to"] for row in outbox if row["template"] == "ack"] == ["bob@customer.example"]


def test_ingest_refuses_an_envelope_no_header_can_hold(configured: Path, db_url: str) -> None:
    """A broken pipe command: the MTA keeps the mail (75) until the admin fixes it."""
    result = run(configured, "ingest", "--sender", "a@example.com\nBcc: x@example.com",
                 stdin=build_mail())  # fmt: skip
    assert result.returncode == 75
    assert result.stderr.startswith(b"mailticket: not stored: no header can hold")
    assert _stored_raws(db_url) == []


def test_ingest_exits_75_when_the_database_is_locked(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    make_settings(tmp_path, f"sqlite:///{db}", database={"busy_timeout": "0.2s"})
    assert run(tmp_path, "db", "upgrade").returncode == 0
    locker = sqlite3.connect(db, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        locked = run(tmp_path, "ingest", stdin=build_mail())
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert locked.returncode == 75
    assert b"Traceback" not in locked.stderr
    assert run(tmp_path, "ingest", stdin=build_mail()).returncode == 0


def test_ingest_exits_75_when_postgres_is_unreachable(tmp_path: Path) -> None:
    make_settings(tmp_path, "postgresql+psycopg://postgres@127.0.0.1:1/none")
    result = run(tmp_path, "ingest", stdin=build_mail())
    assert result.returncode == 75
    assert b"database unavailable" in result.stderr
    assert b"Traceback" not in result.stderr


def test_bad_config_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "mailticket.toml").write_text("[smtp]\nprot = 1\n", encoding="utf-8")
    result = run(tmp_path, "status")
    assert result.returncode == 78
    assert result.stderr.decode().strip().endswith("smtp.prot: unknown key")


@pytest.mark.parametrize("kind", ["mbox", "maildir"])
def test_import_twice_adds_nothing_and_sends_nothing(configured: Path, kind: str) -> None:
    path = configured / f"archive.{kind}"
    box: mailbox.Mailbox = mailbox.mbox(path) if kind == "mbox" else mailbox.Maildir(path)
    for n in range(5):
        box.add(build_mail(subject=f"old question {n}", message_id=f"<old{n}@customer.example>"))
    box.close()
    first = run(configured, "import", str(path))
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().endswith(b"5 stored")
    second = run(configured, "import", str(path))
    assert second.stdout.strip().endswith(b"5 duplicate")
    assert json.loads(run(configured, "outbox", "list", "--json").stdout) == []


def test_quarantine_list_and_replay(configured: Path) -> None:
    assert run(configured, "ingest", stdin=b"").returncode == 0
    rows = json.loads(run(configured, "quarantine", "list", "--json").stdout)
    assert len(rows) == 1 and rows[0]["error"].startswith("unparseable")
    replay = run(configured, "quarantine", "replay", str(rows[0]["id"]))
    assert replay.returncode == 1  # still unparseable: it stays quarantined
    assert b"quarantined" in replay.stdout
    assert len(json.loads(run(configured, "quarantine", "list", "--json").stdout)) == 1


def test_values_from_mail_reach_the_terminal_escaped(configured: Path) -> None:
    fields = b"".join(b"X-Filler: %d\r\n" % i for i in range(1001))  # quarantined
    hostile = b"From: a@customer.example\r\nMessage-ID: <q\x1b[2J\x7f@x>\r\n" + fields
    ingested = run(configured, "ingest", stdin=hostile)
    assert ingested.stdout == b"quarantined <q\\x1b[2J\\x7f@x>\n"
    listed = run(configured, "quarantine", "list").stdout
    assert b"<q\\x1b[2J\\x7f@x> limit: " in listed and b"\x1b" not in listed
    subject = "=?utf-8?b?" + base64.b64encode("RLO \u202e LS \u2028".encode()).decode() + "?="
    mail = build_mail(subject="x").replace(b"Subject: x", f"Subject: {subject}".encode())
    explained = run(configured, "explain", "-", stdin=mail).stdout.decode()
    assert "subject    RLO \\u202e LS \\u2028\n" in explained
    as_json = run(configured, "explain", "--json", "-", stdin=mail).stdout.decode()
    assert '"subject": "RLO \\u202e LS \\u2028"' in as_json
    assert json.loads(as_json)["subject"] == "RLO \u202e LS \u2028"


def test_status_reports_and_exits_1_on_quarantine(configured: Path, db_url: str) -> None:
    engine = store.make_engine(db_url)
    pretend_daemon_running(engine)
    engine.dispose()
    healthy = run(configured, "status")
    assert healthy.returncode == 0, healthy.stderr
    run(configured, "ingest", stdin=b"")
    unhealthy = run(configured, "status", "--json")
    assert unhealthy.returncode == 1
    assert json.loads(unhealthy.stdout)["inbound"]["quarantined"] == 1


def test_outbox_retry_delivers_pending_mail(configured: Path) -> None:
    run(configured, "ingest", stdin=build_mail())
    result = run(configured, "outbox", "retry")
    assert result.returncode == 0, result.stderr
    assert len(list((configured / "outbox" / "new").iterdir())) == 3
    states = {
        row["state"] for row in json.loads(run(configured, "outbox", "list", "--json").stdout)
    }
    assert states == {"sent"}


SITE_RULES = """\
version: 1
queues:
  general: {agents: [agent@example.com]}
  security: {agents: [oncall@example.com]}
defaults: {queue: general, priority: normal}
priorities:
  urgent: {first_response: 2h}
  normal: {first_response: 24h}
rules:
  - name: account security
    if: {subject: {contains: [被盗]}}
    then: {queue: security, priority: urgent}
"""


def test_relative_paths_are_the_config_files_not_the_working_directorys(
    tmp_path: Path,
) -> None:
    """Postfix's pipe runs `mailticket -c /srv/site/mailticket.toml ingest` from its own
    directory: the mail goes into the site's database, through the site's rules."""
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    site.mkdir()
    elsewhere.mkdir()
    (site / "rules.yaml").write_text(SITE_RULES, encoding="utf-8")
    (site / "mailticket.toml").write_text(
        '[database]\nurl = "sqlite:///mailticket.db"\n'
        '[tickets]\nrules_file = "rules.yaml"\nsecret = "s"\n',
        encoding="utf-8",
    )

    def mailticket(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        command = [sys.executable, "-m", "mailticket", "-c", str(site / "mailticket.toml")]
        environ = {k: v for k, v in os.environ.items() if not k.startswith("MAILTICKET_")}
        return subprocess.run(
            [*command, *args], input=stdin, capture_output=True, cwd=elsewhere, env=environ
        )

    assert mailticket("db", "upgrade").returncode == 0
    ingested = mailticket("ingest", stdin=build_mail(subject="账户被盗了"))
    assert ingested.returncode == 0, ingested.stderr
    assert (site / "mailticket.db").exists()
    assert list(elsewhere.iterdir()) == []  # no stray database
    listed = json.loads(mailticket("tickets", "list", "--json").stdout)
    assert [(t["queue"], t["priority"]) for t in listed] == [("security", "urgent")]
