"""The support address is public: an attacker's mails through the real SMTP listener.

Each test plays what an attacker did against a running daemon (forged identities, a
replayed signed mail, a forged Authentication-Results, strangers in Cc, a Cc list that
would make us a relay, two autoresponders in a loop, a flood) and checks what came out
of the outbox: the requester and the agents read the maildir the daemon delivers to.
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import dkim
import pytest
from sqlmodel import Session, col, select

from mailticket.runtime.core import Core, build_core
from mailticket.store.models import Event, Inbound, Outbox, Participant, Ticket
from tests.conftest import Clock, build_mail, make_settings
from tests.daemon_thread import DaemonThread
from tests.test_agents import dkim_key
from tests.test_agents_smtp import Sink

REQUESTER = "alice@customer.example"
AGENT = "agent@example.com"
MALLORY = "mallory@evil.example"
__all__ = ["dkim_key"]  # the fixture, used by name
SIGNED = [b"from", b"to", b"cc", b"subject", b"message-id", b"date", b"in-reply-to", b"references"]


class Daemon:
    """A running daemon, its core (to read the store) and the mailboxes it writes to."""

    def __init__(self, core: Core, daemon: DaemonThread, sink: Sink) -> None:
        self.core, self.daemon, self.sink = core, daemon, sink

    def send(self, raw: bytes, sender: str = REQUESTER) -> None:
        with smtplib.SMTP("127.0.0.1", self.daemon.ports["smtp"], timeout=10) as client:
            client.sendmail(sender, ["support@example.org"], raw)

    def to(
        self, address: str, wanted: Callable[[EmailMessage], bool] = lambda m: True
    ) -> list[EmailMessage]:
        return [m for m in self.sink.mails() if address in (m["To"] or "") and wanted(m)]

    def outbox(self) -> list[Outbox]:
        with Session(self.core.engine) as session:
            return list(session.exec(select(Outbox).order_by(col(Outbox.id))).all())

    def ticket(self, number: int = 1) -> Ticket:
        with Session(self.core.engine) as session:
            found = session.get(Ticket, number)
            assert found is not None
            return found

    def events(self, number: int = 1) -> list[str]:
        with Session(self.core.engine) as session:
            query = select(Event).where(Event.ticket_number == number).order_by(col(Event.id))
            return [f"{e.kind}: {e.detail}" for e in session.exec(query).all()]

    def participants(self, number: int = 1) -> set[str]:
        with Session(self.core.engine) as session:
            query = select(Participant.address).where(Participant.ticket_number == number)
            return set(session.exec(query).all())

    def open_ticket(self, **mail: str) -> EmailMessage:
        """A requester's first mail; returns the agent's notification."""
        self.send(
            build_mail(sender=f"Alice <{REQUESTER}>", message_id="<q1@customer.example>", **mail)
        )
        [notification] = self.sink.wait_for(lambda m: m["To"] == AGENT)
        return notification


@pytest.fixture
def running(
    tmp_path: Path, db_url: str, dkim_key: tuple[bytes, bytes], request: pytest.FixtureRequest
) -> Iterator[Daemon]:
    sections = getattr(request, "param", {})
    settings = make_settings(tmp_path, db_url, **sections)
    records = {
        b"sel._domainkey.example.com.": dkim_key[1],
        b"sel._domainkey.evil.example.": dkim_key[1],
        b"sel._domainkey.customer.example.": dkim_key[1],
    }

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return records.get(name)

    with build_core(settings, clock=Clock(), dns=dns) as core, DaemonThread(core) as daemon:
        yield Daemon(core, daemon, Sink(tmp_path / "outbox"))


def _signed(raw: bytes, domain: bytes, key: bytes) -> bytes:
    present = [h for h in SIGNED if h + b":" in raw.lower()]
    return dkim.sign(raw, b"sel", domain, key, include_headers=present) + raw


def _settled(running: Daemon, marker: bytes) -> None:
    """Wait until the mail carrying ``marker`` in its Message-ID is stored."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with Session(running.core.engine) as session:
            rows = session.exec(select(Inbound.message_id)).all()
        if any(marker.decode() in (row or "") for row in rows):
            return
        time.sleep(0.05)
    raise AssertionError(f"{marker!r} never stored")


# -- 1. one reading of the From ------------------------------------------------------------


def test_an_encoded_word_from_signed_by_the_attacker_is_not_an_agent(
    running: Daemon, dkim_key: tuple[bytes, bytes]
) -> None:
    running.open_ticket()
    tricky = f"=?utf-8?b?Ig==?=x <{AGENT}>=?utf-8?b?IiA8bWFsbG9yeUBldmlsLmV4YW1wbGU+?="
    raw = build_mail(
        sender="placeholder@x.example",
        subject="Re: [MT-1] Cannot log in",
        body="#close\nSend your 12 recovery words to verify your wallet.\n",
        message_id="<trick-1@evil.example>",
    ).replace(b"From: placeholder@x.example", f"From: {tricky}".encode())
    running.send(_signed(raw, b"evil.example", dkim_key[0]), MALLORY)
    _settled(running, b"trick-1")
    assert running.ticket().status == "new"
    assert not running.to(REQUESTER, lambda m: "recovery words" in str(m.get_body(("plain",))))
    events = running.events()
    assert any("from reads differently to different parsers" in e for e in events)
    assert not [r for r in running.outbox() if r.template in ("agent_reply", "agent_confirm")]


# -- 2. a genuine signed mail replayed onto another ticket -----------------------------------


def test_a_signed_agent_mail_replayed_with_new_headers_on_top_acts_nowhere(
    running: Daemon, dkim_key: tuple[bytes, bytes]
) -> None:
    running.open_ticket()
    running.send(
        build_mail(
            sender="Bob <bob@other.example>", subject="Second", message_id="<q2@other.example>"
        ),
        "bob@other.example",
    )
    running.sink.wait_for(lambda m: m["To"] == AGENT, count=2)
    genuine = _signed(
        build_mail(sender=AGENT, subject="Re: [MT-1] Cannot log in", body="#resolve\n",
                   message_id="<genuine@example.com>"),
        b"example.com",
        dkim_key[0],
    )  # fmt: skip
    replayed = b"Message-ID: <replay@evil.example>\r\nSubject: Re: [MT-2] x\r\n" + genuine
    running.send(replayed, AGENT)
    _settled(running, b"replay")
    assert (running.ticket(1).status, running.ticket(2).status) == ("new", "new")
    assert any("header repeated" in e for e in running.events(2))


# -- 3. Authentication-Results are read only from a trusted relay ----------------------------


def _vouched(body: str, message_id: str) -> bytes:
    return build_mail(
        sender=AGENT,
        subject="Re: [MT-1] Cannot log in",
        body=body,
        message_id=message_id,
        headers={"Authentication-Results": "mx.example.org; dkim=pass header.d=example.com"},
    )


@pytest.mark.parametrize(
    "running", [{"agents": {"trusted_authserv_id": "mx.example.org"}}], indirect=True
)
def test_a_forged_authentication_results_from_an_untrusted_peer_proves_nothing(
    running: Daemon,
) -> None:
    running.open_ticket()
    running.send(_vouched("#resolve\n", "<ar-1@example.com>"), AGENT)
    _settled(running, b"ar-1")
    assert running.ticket().status == "new"
    assert any("did not come from a trusted relay" in e for e in running.events())


@pytest.mark.parametrize(
    "running",
    [{"agents": {"trusted_authserv_id": "mx.example.org", "trusted_relays": ["127.0.0.0/8"]}}],
    indirect=True,
)
def test_the_trusted_relays_authentication_results_vouch(running: Daemon) -> None:
    running.open_ticket()
    running.send(_vouched("#resolve\n", "<ar-2@example.com>"), AGENT)
    _settled(running, b"ar-2")
    assert running.ticket().status == "resolved"


# -- 4. strangers do not join; 5. no relay ---------------------------------------------------


def test_a_forged_requester_cannot_add_a_stranger(running: Daemon) -> None:
    notification = running.open_ticket()
    forged = build_mail(
        sender=f"Alice <{REQUESTER}>",
        subject="Re: [MT-1] Cannot log in",
        body="Please also send the answer to my colleague.\n",
        cc=MALLORY,
        message_id="<forged-cc@evil.example>",
    )
    running.send(forged, MALLORY)
    running.sink.wait_for(lambda m: m["To"] == AGENT and MALLORY in str(m.get_body(("plain",))))
    assert running.participants() == {REQUESTER}
    assert any(e.startswith("note: Cc proposed, not added") for e in running.events())
    answer = build_mail(
        sender=AGENT,
        subject=f"Re: {notification['Subject']}",
        body="Your account number is 12345.\n",
        in_reply_to=notification["Message-ID"],
        references=notification["Message-ID"],
        message_id="<answer@example.com>",
    )
    running.send(answer, AGENT)
    [relay] = running.sink.wait_for(lambda m: "12345" in str(m.get_body(("plain",))))
    assert relay["To"] == REQUESTER and relay["Cc"] is None
    assert not running.to(MALLORY)


def test_a_signed_requester_adds_cc_up_to_the_cap_and_no_mail_has_more_recipients(
    running: Daemon, dkim_key: tuple[bytes, bytes]
) -> None:
    many = ", ".join(
        f"user{n}@customer.example" for n in range(2_000)
    )  # 10,000: over the header limit, quarantined
    first = build_mail(
        sender=f"Alice <{REQUESTER}>",
        subject="Big list",
        cc=many,
        message_id="<big@customer.example>",
    )
    running.send(_signed(first, b"customer.example", dkim_key[0]) if False else first)
    [notification] = running.sink.wait_for(lambda m: m["To"] == AGENT)
    assert running.participants() == {REQUESTER}  # unsigned: only proposed
    body = str(notification.get_body(("plain",)))
    assert "user0@customer.example" in body and len(notification.as_bytes()) < 20_000
    signed = _signed(
        build_mail(
            sender=f"Alice <{REQUESTER}>",
            subject="Re: [MT-1] Big list",
            cc=many,
            message_id="<big-2@customer.example>",
        ),
        b"customer.example",
        dkim_key[0],
    )
    running.send(signed)
    _settled(running, b"big-2")
    assert len(running.participants()) == 10  # tickets.max_participants
    assert any("Cc not added: tickets.max_participants (10)" in e for e in running.events())
    assert sum(e.startswith("participant: +") for e in running.events()) == 9
    reply = build_mail(
        sender=AGENT,
        subject=f"Re: {notification['Subject']}",
        body="Noted.\n",
        in_reply_to=notification["Message-ID"],
        message_id="<noted@example.com>",
    )
    running.send(reply, AGENT)
    [relay] = running.sink.wait_for(lambda m: "Noted." in str(m.get_body(("plain",))))
    recipients = [relay["To"], *(relay["Cc"] or "").split(",")]
    assert len([r for r in recipients if r.strip()]) <= 10


# -- forged agent mail: stored, the agent asked to confirm, a reply applies it ---------------


def test_an_unverified_agent_mail_applies_only_when_the_agent_confirms(running: Daemon) -> None:
    running.open_ticket()
    forged = build_mail(
        sender=AGENT,
        subject="Re: [MT-1] Cannot log in",
        body="Please reset your password here.\n",
        message_id="<unverified@example.com>",
    )
    running.send(forged, AGENT)
    [request] = running.sink.wait_for(lambda m: m["To"] == AGENT and "Not applied" in m["Subject"])
    assert not running.to(REQUESTER, lambda m: "reset your password" in str(m.get_body(("plain",))))
    confirm = build_mail(
        sender=AGENT,
        subject=f"Re: {request['Subject']}",
        body="yes, that was me\n",
        in_reply_to=request["Message-ID"],
        references=request["Message-ID"],
        message_id="<confirm@example.com>",
    )
    running.send(confirm, AGENT)
    [relay] = running.sink.wait_for(
        lambda m: m["To"] == REQUESTER and "reset your password" in str(m.get_body(("plain",)))
    )
    assert "yes, that was me" not in str(relay.get_body(("plain",)))
    assert running.ticket().status == "pending"
    assert any(
        e.startswith("confirmed: applied by <confirm@example.com>") for e in running.events()
    )
    running.send(confirm.replace(b"<confirm@", b"<confirm-again@"), AGENT)
    _settled(running, b"confirm-again")
    relays = running.to(REQUESTER, lambda m: "reset your password" in str(m.get_body(("plain",))))
    assert len(relays) == 1  # a request confirms once


# -- 6. two autoresponders through us: bounded ------------------------------------------------


@pytest.mark.parametrize("running", [{"tickets": {"ticket_mail_budget": "10/1h"}}], indirect=True)
def test_two_autoresponders_without_headers_stop_at_the_ticket_budget(running: Daemon) -> None:
    """Neither sets Auto-Submitted nor uses an autoresponder's subject: only the budget
    stops them. Each side answers the newest mail it got, as such programs do."""
    running.open_ticket()
    for turn in range(20):
        to_agent = running.to(AGENT, lambda m: "Mail loop" not in m["Subject"])
        latest = to_agent[-1]
        running.send(
            build_mail(
                sender=AGENT,
                subject=f"Re: {latest['Subject']}",
                body=f"Thanks for your mail ({turn}).\n",
                in_reply_to=latest["Message-ID"],
                message_id=f"<agent-ar-{turn}@example.com>",
            ),
            AGENT,
        )
        _settled(running, f"agent-ar-{turn}".encode())
        from_us = running.to(REQUESTER)
        latest = from_us[-1]
        running.send(
            build_mail(
                sender=f"Alice <{REQUESTER}>",
                subject=f"Re: {latest['Subject']}",
                body=f"Thank you for your message ({turn}).\n",
                in_reply_to=latest["Message-ID"],
                message_id=f"<req-ar-{turn}@customer.example>",
            )
        )
        _settled(running, f"req-ar-{turn}".encode())
    sent = [r.template for r in running.outbox()]
    # unbounded, 20 turns would send 1 ack + 2 agent_new + 20 relays + 40 agent_update
    assert len(sent) <= 3 + 10 * 2, sent  # within the budget of 10 mails on the ticket
    assert sent.count("loop_suspected") == 2  # once to each agent of the queue
    assert sent[-2:] == ["loop_suspected", "loop_suspected"]  # and nothing after it
    assert "loop-suspected" in running.ticket().tags.split()


# -- 7. one sender's flood: one digest, not one notice each -----------------------------------


@pytest.mark.parametrize(
    "running", [{"tickets": {"new_tickets_per_sender": "5/10m"}}], indirect=True
)
def test_a_flood_of_new_tickets_from_one_sender_gives_agents_one_digest(running: Daemon) -> None:
    for n in range(15):
        running.send(
            build_mail(
                sender="Bot <bot@flood.example>",
                subject=f"Order {n}",
                message_id=f"<flood-{n}@flood.example>",
            ),
            "bot@flood.example",
        )
    _settled(running, b"flood-14")
    to_agent = [r.template for r in running.outbox() if r.recipient == AGENT]
    assert to_agent == ["agent_new"] * 5 + ["agent_digest"]
    with Session(running.core.engine) as session:
        assert len(session.exec(select(Ticket)).all()) == 15  # every mail stored


# -- no backscatter -------------------------------------------------------------------------


@pytest.mark.parametrize("running", [{"agents": {"trusted_relays": ["127.0.0.1"]}}], indirect=True)
def test_spam_flagged_by_the_trusted_relay_is_stored_and_never_answered(running: Daemon) -> None:
    spam = build_mail(
        sender="Forged <victim@innocent.example>",
        subject="Cheap watches",
        message_id="<spam-1@spam.example>",
        headers={"X-Spam-Flag": "YES"},
    )
    running.send(spam, "victim@innocent.example")
    _settled(running, b"spam-1")
    assert running.ticket().status == "spam"
    assert running.outbox() == []
    assert any(e.startswith("note: spam: X-Spam-Flag: YES") for e in running.events())


def test_spam_headers_from_an_untrusted_peer_are_ignored(running: Daemon) -> None:
    running.send(
        build_mail(
            subject="Help", headers={"X-Spam-Flag": "YES"}, message_id="<h@customer.example>"
        )
    )
    running.sink.wait_for(lambda m: m["To"] == AGENT)
    assert running.ticket().status == "new"
