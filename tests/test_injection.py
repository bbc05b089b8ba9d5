"""Nothing a requester writes can add headers, recipients or template logic to our mail.

Hostile mails go through the real intake (SQLite, parser pool); every composed mail in
the outbox is parsed back and must hold exactly the headers mailticket writes, one To
(the expected recipient), no Cc or Bcc, and the requester's text as inert text.
"""

from __future__ import annotations

import base64
import json
import re
import smtplib
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from mailticket.outbound.outbox import message_bytes
from mailticket.runtime.core import Core, build_core
from mailticket.store.models import Outbox
from tests.conftest import Clock, make_settings
from tests.daemon_process import DaemonProcess
from tests.dovecot import free_port
from tests.test_cli import run

REQUESTER = "alice@customer.example"
AGENTS = ("agent@example.com", "second@example.com")  # the general queue of conftest.RULES
OURS = frozenset(
    {
        "from",
        "to",
        "reply-to",
        "subject",
        "date",
        "message-id",
        "in-reply-to",
        "references",
        "auto-submitted",
        "x-auto-response-suppress",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
    }
)


@pytest.fixture
def core(tmp_path: Path, clock: Clock) -> Iterator[Core]:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    with build_core(settings, clock=clock) as built:
        yield built


def q(text: str) -> bytes:
    """``text`` as one RFC 2047 encoded word (base64, UTF-8): it may hold anything."""
    return b"=?utf-8?b?" + base64.b64encode(text.encode()) + b"?="


def hostile(
    *, sender: bytes = b"Alice <alice@customer.example>", subject: bytes, body: bytes = b"hi"
) -> bytes:
    return (
        b"From: " + sender + b"\r\nTo: support@example.org\r\n"
        b"Cc: colleague@customer.example\r\nReply-To: elsewhere@evil.example\r\n"
        b"Subject: " + subject + b"\r\nMessage-ID: <hostile@customer.example>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + body + b"\r\n"
    )


def answers(core: Core, raw: bytes) -> list[tuple[Outbox, EmailMessage]]:
    """Submit ``raw``; the composed mails, parsed back, after checking their envelope."""
    assert core.intake.submit(raw, "smtp").outcome == "stored"
    with Session(core.engine) as session:
        rows = list(session.exec(select(Outbox).order_by(col(Outbox.id))).all())
    assert [(r.template, r.recipient, r.extra_recipients) for r in rows] == [
        ("ack", REQUESTER, ""),
        *(("agent_new", agent, "") for agent in AGENTS),
    ]
    parsed = []
    for row in rows:
        msg = message_from_bytes(message_bytes(row), policy=policy.default)
        assert isinstance(msg, EmailMessage)
        assert_ours(msg, row.recipient)
        assert all(
            len(line) <= 998 for line in message_bytes(row).split(b"\r\n\r\n")[0].split(b"\r\n")
        )
        parsed.append((row, msg))
    return parsed


def assert_ours(msg: EmailMessage, recipient: str) -> None:
    """Only our headers, each once; the one recipient we chose; a clean parse."""
    names = [name.lower() for name in msg]
    assert set(names) <= OURS, names
    assert len(names) == len(set(names)), names
    assert [a.addr_spec for a in msg["To"].addresses] == [recipient]
    assert [a.addr_spec for a in msg["From"].addresses] == ["support@example.org"]
    assert not msg.defects
    assert "\r" not in str(msg["Subject"]) and "\n" not in str(msg["Subject"])


def body(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


@pytest.mark.parametrize(
    ("subject", "shown"),
    [
        (q("a\r\nBcc: x@evil.example"), "a Bcc: x@evil.example"),
        (b"=?utf-8?q?a=0D=0ABcc:_x@evil.example?=", "a Bcc: x@evil.example"),
        (q("a\nTo: x@evil.example\n\nbody"), "a To: x@evil.example body"),
        (
            b"=?gb2312?b?" + base64.b64encode("工单\r\nCc: x@evil.example".encode("gbk")) + b"?=",
            "工单 Cc: x@evil.example",
        ),
        (b"a\rBcc: x@evil.example", "a"),  # a bare CR ends the line for the parser: a new field
        (q("\u202egpj.exe \x1b[31m red \x00 nul \x7f"), "gpj.exe [31m red nul"),
    ],
)
def test_line_breaks_in_the_subject_stay_in_the_subject(
    core: Core, subject: bytes, shown: str
) -> None:
    (_, ack), *notifications = answers(core, hostile(subject=subject))
    assert str(ack["Subject"]) == f"[MT-1] {shown}"
    for _, msg in notifications:  # "New ticket: " in the requester's language
        assert str(msg["Subject"]).startswith("[MT-1] ")
        assert str(msg["Subject"]).endswith(f" {shown}") or str(msg["Subject"]).endswith(
            f"：{shown}"
        )


@pytest.mark.parametrize(
    "sender",
    [
        q("Alice\r\nBcc: x@evil.example") + b" <alice@customer.example>",
        b'"support@example.org, x@evil.example" <alice@customer.example>',
        q("x@evil.example, <x@evil.example>") + b" <alice@customer.example>",
        b"Alice <alice@customer.example> (Bcc: x@evil.example)",
    ],
)
def test_display_names_add_no_recipient(core: Core, sender: bytes) -> None:
    answers(core, hostile(sender=sender, subject=b"help"))  # asserts the recipients


def test_template_syntax_from_the_requester_is_text(core: Core) -> None:
    logic = "{{ 7*7 }} {% for x in range(3) %}X{% endfor %} {# c #} {{ settings.secret }}"
    raw = hostile(subject=logic.encode(), body=f"Body: {logic}\r\nBcc: y@evil.example".encode())
    for row, msg in answers(core, raw):
        assert logic in str(msg["Subject"])
        text = body(msg).replace("\r\n", "\n")
        assert "49" not in text and "XXX" not in text and "test-secret" not in text
        if row.template == "agent_new":
            assert f"Body: {logic}\nBcc: y@evil.example" in text


def test_a_very_long_subject_is_folded_not_split_into_fields(core: Core) -> None:
    words = " ".join(f"word{i}" for i in range(2000))  # about 16,000 characters
    for _, msg in answers(core, hostile(subject=words.encode())):
        assert words[:998] in str(msg["Subject"])  # the ticket keeps 998 characters (tickets.py)


def test_an_encoded_word_inside_an_encoded_word_is_shown_literally(core: Core) -> None:
    literal = "=?utf-8?q?a=0D=0ABcc:_x@evil.example?="
    for _, msg in answers(core, hostile(subject=q(literal))):
        assert str(msg["Subject"]).endswith(f" {literal}")


# -- what reaches an admin's terminal and the logs ----------------------------------------

# C0 but LF, DEL, C1, the line and paragraph separators, the bidi controls
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
EVIL = "E\x1b[2J\x1b]0;owned\x07 C1\x85\x9b31m LS\u2028 PS\u2029 RLO\u202e LRI\u2066 DEL\x7f ."


def too_many_fields(message_id: bytes) -> bytes:
    """A mail over the header field limit: quarantined, its Message-ID read from its head."""
    fields = b"".join(b"X-Filler: %d\r\n" % i for i in range(1001))
    return b"From: " + REQUESTER.encode() + b"\r\nMessage-ID: " + message_id + b"\r\n" + fields


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_control_characters_reach_no_terminal_and_no_log_line(
    tmp_path: Path, log_format: str
) -> None:
    port = free_port()
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    make_settings(tmp_path, db, smtp={"port": port}, log={"format": log_format})
    with DaemonProcess(tmp_path, port) as daemon, smtplib.SMTP("127.0.0.1", port) as client:
        client.sendmail(REQUESTER, ["support@example.org"], hostile(subject=q(EVIL)))
        client.sendmail(REQUESTER, ["support@example.org"], too_many_fields(q(f"<q{EVIL}@x>")))
    log = daemon.log()
    escaped = "\\x1b[2J" if log_format == "text" else "\\u001b[2J"
    assert "quarantined" in log and escaped in log, log
    assert UNSAFE.findall(log) == []
    outputs = {
        " ".join(args): run(tmp_path, *args).stdout.decode()
        for args in (
            ("quarantine", "list"),
            ("quarantine", "list", "--json"),
            ("tickets", "list"),
            ("tickets", "list", "--json"),
            ("tickets", "show", "MT-1"),
            ("tickets", "show", "MT-1", "--json"),
            ("outbox", "list"),
            ("status",),
        )
    }
    for command, output in outputs.items():
        assert UNSAFE.findall(output) == [], command
    assert "\\x1b[2J" in outputs["quarantine list"]  # shown, escaped
    assert "RLO\\u202e LRI\\u2066" in outputs["tickets show MT-1"]  # the parser drops the rest
    (row,) = json.loads(outputs["quarantine list --json"])
    assert row["message_id"].startswith("<qE\x1b[2J\x1b]0;owned\x07")  # JSON keeps the value
    assert "\u202e" in row["message_id"]
