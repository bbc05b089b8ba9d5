"""Agents by email end to end: real SMTP in, the real outbound maildir out.

A requester writes; the agent's notification comes out of the outbox; the agent answers it
with a reply shaped the way Gmail, Outlook, Apple Mail, Thunderbird, mutt, Foxmail, QQ Mail
and Chinese Outlook shape theirs (tests/mails/replies: quote markers, attribution lines,
header blocks, HTML quote containers, GBK labelled gb2312); the requester receives only the
agent's new words, threaded under the mails they already have.
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.policy import compat32
from pathlib import Path

import pytest
from sqlmodel import Session

from mailticket.runtime.core import build_core
from mailticket.store.models import Ticket
from tests.conftest import Clock, build_mail, make_settings
from tests.daemon_thread import DaemonThread

REPLIES = Path(__file__).parent / "mails" / "replies"
NEW_EN = "Hi Bob,\n\nplease clear your browser cache and sign in again.\n\nAlice"
NEW_ZH = "王先生您好：\n\n已为您重置密码，请用新密码登录。\n\n李娜"
REQUESTER = "bob@example.org"
AGENT = "agent@example.com"
CLIENTS = {
    "gmail.eml": NEW_EN,
    "outlook_desktop.eml": NEW_EN,
    "outlook_web_html_only.eml": NEW_EN,
    "apple_mail.eml": NEW_EN,
    "thunderbird_bottom.eml": NEW_EN,
    "mutt_top.eml": NEW_EN,
    "mutt_bottom.eml": NEW_EN,
    "thunderbird_zh.eml": NEW_ZH,
    "outlook_zh.eml": NEW_ZH,
    "qq_mail.eml": NEW_ZH,
    "netease.eml": NEW_ZH,
}


class Sink:
    """The outbound maildir, read as the requester's and the agents' mailboxes."""

    def __init__(self, path: Path) -> None:
        self.new = path / "new"

    def mails(self) -> list[EmailMessage]:
        found = []
        for path in sorted(self.new.glob("*")) if self.new.is_dir() else []:
            message = message_from_bytes(path.read_bytes(), policy=policy.default)
            assert isinstance(message, EmailMessage)
            found.append(message)
        return found

    def wait_for(
        self, wanted: Callable[[EmailMessage], bool], count: int = 1
    ) -> list[EmailMessage]:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = [m for m in self.mails() if wanted(m)]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no such mail; the sink has {[m['Subject'] for m in self.mails()]}")


@pytest.fixture
def running(tmp_path: Path, db_url: str) -> Iterator[tuple[DaemonThread, Sink]]:
    settings = make_settings(tmp_path, db_url)
    with build_core(settings, clock=Clock()) as core, DaemonThread(core) as daemon:
        yield daemon, Sink(tmp_path / "outbox")


def _send(daemon: DaemonThread, sender: str, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", daemon.ports["smtp"], timeout=10) as client:
        client.sendmail(sender, ["support@example.org"], raw)


def _to(address: str, template_subject: str) -> Callable[[EmailMessage], bool]:
    return lambda m: m["To"] == address and template_subject in m["Subject"]


def _client_reply(name: str, notification: EmailMessage, message_id: str) -> bytes:
    """The client's reply with its headers aimed at this notification (its body untouched)."""
    reply: Message = message_from_bytes((REPLIES / name).read_bytes(), policy=compat32)
    for header, value in (
        ("From", f"Alice Agent <{AGENT}>"),
        ("To", "support@example.org"),
        ("Subject", f"Re: {notification['Subject']}"),
        ("Message-ID", message_id),
        ("In-Reply-To", notification["Message-ID"]),
        ("References", notification["Message-ID"]),
    ):
        del reply[header]
        reply[header] = value
    return reply.as_bytes(policy=compat32.clone(linesep="\r\n"))  # as mail travels


def _text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    text: str = part.get_content()  # type: ignore[attr-defined]
    return text.replace("\r\n", "\n")


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_requester_receives_only_the_agents_new_words(
    running: tuple[DaemonThread, Sink], client: str
) -> None:
    daemon, sink = running
    chinese = CLIENTS[client] == NEW_ZH
    subject, body = (
        ("无法登录", "从昨天起无法登录。\n") if chinese else ("Cannot log in", "Help!\n")
    )
    first = build_mail(
        sender=f"Bob <{REQUESTER}>", subject=subject, body=body, message_id="<q@example.org>"
    )
    _send(daemon, REQUESTER, first)
    [ack] = sink.wait_for(lambda m: m["To"] == REQUESTER)
    [notification] = sink.wait_for(lambda m: m["To"] == AGENT)
    assert notification["Reply-To"] == "support@example.org"
    assert notification["Subject"].startswith("[MT-1] ")

    _send(daemon, AGENT, _client_reply(client, notification, "<agent-reply@example.com>"))
    [relay] = sink.wait_for(lambda m: m["To"] == REQUESTER and m["Message-ID"] != ack["Message-ID"])

    said = _text(relay).split("\n-- \n")[0].strip()
    assert said == CLIENTS[client]
    assert relay["From"] == "support@example.org"
    assert relay["Subject"] == f"[MT-1] {subject}"
    assert relay["In-Reply-To"] == ack["Message-ID"]
    assert relay["References"].split() == ["<q@example.org>", ack["Message-ID"]]
    assert relay["Auto-Submitted"] is None
    assert relay["Cc"] is None
    assert all(m["To"] != "second@example.com" or m is not relay for m in sink.mails())


def test_requester_reply_reaches_the_agent_in_the_same_conversation(
    running: tuple[DaemonThread, Sink],
) -> None:
    daemon, sink = running
    _send(daemon, REQUESTER, build_mail(sender=REQUESTER, message_id="<q@example.org>"))
    [notification] = sink.wait_for(lambda m: m["To"] == AGENT)
    answer = build_mail(
        sender=AGENT,
        subject=f"Re: {notification['Subject']}",
        body="#assign me\n\nTry again now, please.",
        in_reply_to=notification["Message-ID"],
        references=notification["Message-ID"],
        message_id="<a1@example.com>",
    )
    _send(daemon, AGENT, answer)
    [relay] = sink.wait_for(lambda m: m["To"] == REQUESTER and "Try again" in _text(m))
    reply = build_mail(
        sender=REQUESTER,
        subject=f"Re: {relay['Subject']}",
        body="Works now, thanks!\n\n> Try again now, please.",
        in_reply_to=relay["Message-ID"],
        references=relay["References"] + " " + relay["Message-ID"],
    )
    _send(daemon, REQUESTER, reply)
    [update] = sink.wait_for(lambda m: m["To"] == AGENT and "Works now" in _text(m))
    assert update["Subject"].startswith("[MT-1] ")
    # the agent's client has the notification and its own answer: the update follows them
    assert update["In-Reply-To"] == "<a1@example.com>"
    assert update["References"].split() == [notification["Message-ID"], "<a1@example.com>"]
    assert "Try again now" not in _text(update)  # the quoted part is not repeated
    assert not [m for m in sink.mails() if m["To"] == "second@example.com" and "Works" in _text(m)]
    with Session(daemon.core.engine) as session:
        ticket = session.get(Ticket, 1)
        assert ticket is not None
        assert (ticket.status, ticket.assignee) == ("open", AGENT)
