"""Agents and requesters by email, through the real intake (SQLite and PostgreSQL).

Each test opens a ticket from a requester, then plays the agent's or requester's mail on
it and checks the ticket, its event log and the outbox: what was changed, who was told.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlmodel import Session, col, select

from mailticket.outbound.outbox import message_bytes
from mailticket.runtime.core import Core, build_core
from mailticket.runtime.writer import Writer
from mailticket.store.models import Event, Inbound, Message, Outbox, Ticket
from tests.conftest import Clock, build_mail, make_settings

REQUESTER = "alice@customer.example"
AGENT = "agent@example.com"
SECOND = "second@example.com"


def _ticket(core: Core, number: int = 1) -> Ticket:
    with Session(core.engine) as session:
        ticket = session.get(Ticket, number)
        assert ticket is not None
        return ticket


def _tickets(core: Core) -> list[Ticket]:
    with Session(core.engine) as session:
        return list(session.exec(select(Ticket).order_by(col(Ticket.number))).all())


def _outbox(core: Core, *, after: int = 0) -> list[Outbox]:
    with Session(core.engine) as session:
        query = select(Outbox).where(col(Outbox.id) > after).order_by(col(Outbox.id))
        return list(session.exec(query).all())


def _last_outbox_id(core: Core) -> int:
    rows = _outbox(core)
    return rows[-1].id or 0 if rows else 0


def _events(core: Core, number: int = 1) -> list[str]:
    with Session(core.engine) as session:
        query = select(Event).where(Event.ticket_number == number).order_by(col(Event.id))
        return [f"{e.kind}: {e.detail}" for e in session.exec(query).all()]


def _parsed(row: Outbox) -> EmailMessage:
    message = message_from_bytes(message_bytes(row), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _body(row: Outbox) -> str:
    part = _parsed(row).get_body(("plain",))
    assert part is not None
    text: str = part.get_content()  # type: ignore[attr-defined]
    return text


def _notification_to(core: Core, address: str) -> Outbox:
    return [row for row in _outbox(core) if row.recipient == address][-1]


def _open(core: Core, **mail: str) -> None:
    defaults = {"message_id": "<q1@customer.example>"}
    result = core.intake.submit(build_mail(**{**defaults, **mail}), "smtp")
    assert (result.outcome, result.ticket) == ("stored", 1)


def _agent_mail(core: Core, body: str, *, sender: str = AGENT, **extra: str) -> str:
    """The agent hits Reply on their notification; returns the outcome's detail."""
    notification = _notification_to(core, sender) if sender in (AGENT, SECOND) else None
    thread = notification.message_id if notification else None
    raw = build_mail(
        sender=sender,
        subject="Re: [MT-1] New ticket: Cannot log in",
        body=body,
        in_reply_to=thread,
        references=thread,
        **extra,
    )
    result = core.intake.submit(raw, "smtp")
    assert result.outcome == "stored", result
    return result.detail


QUOTE = "\n\nOn Mon, 2 Nov 2026 at 09:00, Support <support@example.org> wrote:\n> New ticket\n"


# -- public replies -------------------------------------------------------------------------


def test_agent_reply_is_relayed_to_the_requester_only_new_text(core: Core, clock: Clock) -> None:
    _open(core, cc="Carol <carol@customer.example>")
    assert any(e.startswith("note: Cc proposed, not added") for e in _events(core))
    assert "carol@customer.example" in _body(_notification_to(core, AGENT))  # proposed
    seen = _last_outbox_id(core)
    clock.advance(hours=1)
    _agent_mail(core, "#cc add carol@customer.example\nPlease clear your cache." + QUOTE)

    [relay] = _outbox(core, after=seen)
    assert (relay.template, relay.recipient, relay.extra_recipients) == (
        "agent_reply",
        REQUESTER,
        "carol@customer.example",
    )
    message = _parsed(relay)
    assert message["From"] == "support@example.org"
    assert message["Subject"] == "[MT-1] Cannot log in"
    assert message["Auto-Submitted"] is None  # a person's words, relayed
    body = _body(relay)
    assert body.startswith("Please clear your cache.")
    assert "New ticket" not in body and "wrote:" not in body
    # threaded into what the requester has seen: their mail and our acknowledgement
    ack = next(row for row in _outbox(core) if row.template == "ack")
    assert message["In-Reply-To"] == ack.message_id
    assert message["References"].split() == ["<q1@customer.example>", ack.message_id]

    ticket = _ticket(core)
    assert ticket.status == "pending"
    assert ticket.first_response_at == clock()
    assert ticket.pending_since == clock()
    # the first-response chain has stopped: the next action is the requester reminder
    assert ticket.next_action_at is not None and ticket.next_action_at > clock() + timedelta(days=2)
    assert "status: new -> pending: agent from agent@example.com" in _events(core)


def test_the_agents_notification_threads_their_conversation(core: Core) -> None:
    _open(core)
    _agent_mail(core, "#assign me")
    seen = _last_outbox_id(core)
    reply = build_mail(subject="Re: [MT-1] Cannot log in", body="It still fails." + QUOTE)
    core.intake.submit(reply, "smtp")

    [update] = _outbox(core, after=seen)  # assigned: only the assignee hears of it
    assert (update.template, update.recipient) == ("agent_update", AGENT)
    first = next(row for row in _outbox(core) if row.recipient == AGENT)
    message = _parsed(update)
    assert message["Subject"].startswith("[MT-1] ")
    assert message["In-Reply-To"] != first.message_id  # the agent's own mail came after it
    assert first.message_id in message["References"].split()
    assert "It still fails." in _body(update) and "New ticket" not in _body(update)


def test_a_second_reply_while_pending_restarts_the_pending_clock(core: Core, clock: Clock) -> None:
    _open(core)
    _agent_mail(core, "First answer.")
    first = _ticket(core)
    clock.advance(days=1)
    _agent_mail(core, "Any news?")
    second = _ticket(core)
    assert second.status == "pending"
    assert second.first_response_at == first.first_response_at
    assert second.pending_since == clock()
    assert second.next_action_at is not None and first.next_action_at is not None
    assert second.next_action_at > first.next_action_at


def test_agent_attachment_is_relayed(core: Core) -> None:
    _open(core)
    seen = _last_outbox_id(core)
    message = EmailMessage()
    message["From"] = AGENT
    message["To"] = "support@example.org"
    message["Subject"] = "Re: [MT-1] New ticket: Cannot log in"
    message["Message-ID"] = "<with-file@example.com>"
    message["In-Reply-To"] = _notification_to(core, AGENT).message_id
    message.set_content("The guide is attached.")
    message.add_attachment(
        b"%PDF-1.4 guide", maintype="application", subtype="pdf", filename="指南.pdf"
    )
    core.intake.submit(message.as_bytes(), "smtp")
    [relay] = _outbox(core, after=seen)
    [attachment] = list(_parsed(relay).iter_attachments())
    assert attachment.get_filename() == "指南.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == b"%PDF-1.4 guide"  # type: ignore[attr-defined]


# -- internal notes -------------------------------------------------------------------------


def test_note_goes_to_the_other_agents_only(core: Core) -> None:
    _open(core)
    seen = _last_outbox_id(core)
    _agent_mail(core, "#note\nLooks like the SSO outage." + QUOTE)
    rows = _outbox(core, after=seen)
    assert [(r.template, r.recipient) for r in rows] == [("agent_note", SECOND)]
    assert _body(rows[0]).split("-" * 72)[-1].strip() == "Looks like the SSO outage."
    ticket = _ticket(core)
    assert (ticket.status, ticket.first_response_at) == ("open", None)  # taken, not answered
    with Session(core.engine) as session:
        kinds = session.exec(select(Message.kind).where(Message.direction == "in")).all()
    assert list(kinds) == ["request", "note"]


def test_assignee_note_reaches_the_rest_of_the_queue(core: Core) -> None:
    _open(core)
    _agent_mail(core, "#assign me")
    seen = _last_outbox_id(core)
    _agent_mail(core, "#note\nWaiting for the vendor.")
    assert [(r.template, r.recipient) for r in _outbox(core, after=seen)] == [
        ("agent_note", SECOND)
    ]


def test_mail_to_the_comment_address_is_a_note(tmp_path: Path, db_url: str, clock: Clock) -> None:
    settings = make_settings(tmp_path, db_url, tickets={"comment_address": "notes@example.org"})
    with build_core(settings, clock=clock) as core:
        _open(core)
        seen = _last_outbox_id(core)
        _agent_mail(core, "Internal: VIP customer.", to="notes@example.org")
        [note] = _outbox(core, after=seen)
        assert (note.template, note.recipient) == ("agent_note", SECOND)
        assert _parsed(note)["Reply-To"] == "notes@example.org"  # a reply is a note too


# -- commands -------------------------------------------------------------------------------


def test_commands_only_change_the_ticket_and_relay_nothing(core: Core, clock: Clock) -> None:
    _open(core)
    created = _ticket(core).created_at
    seen = _last_outbox_id(core)
    clock.advance(minutes=5)
    _agent_mail(core, "#priority urgent\n#assign second@example.com\n#tag vip billing\n" + QUOTE)
    assert _outbox(core, after=seen) == []
    ticket = _ticket(core)
    assert (ticket.priority, ticket.assignee, ticket.tags, ticket.status) == (
        "urgent",
        SECOND,
        "vip billing",
        "open",
    )
    assert ticket.due_at == created + timedelta(hours=2)  # urgent: 2 h from creation
    assert ticket.next_action_at == created + timedelta(hours=1, minutes=30)  # 75 %
    events = _events(core)
    assert "assigned: nobody -> second@example.com" in events
    assert any(e.startswith("priority: normal -> urgent; first response due") for e in events)
    assert "tags: +vip +billing" in events
    assert any(e.startswith("authenticated: agent authenticated: reply to <MT-1.") for e in events)


def test_untag_queue_and_close(core: Core) -> None:
    _open(core)
    _agent_mail(core, "#tag a b")
    _agent_mail(core, "#untag a\n#queue security\n#close")
    ticket = _ticket(core)
    assert (ticket.tags, ticket.queue, ticket.status) == ("b", "security", "closed")
    assert ticket.closed_at is not None and ticket.next_action_at is None
    assert "queue: general -> security" in _events(core)


def test_resolve_tells_the_requester_and_reopen_takes_it_back(core: Core) -> None:
    _open(core)
    seen = _last_outbox_id(core)
    _agent_mail(core, "#resolve")
    [told] = _outbox(core, after=seen)
    assert (told.template, told.recipient, told.automatic) == ("resolved", REQUESTER, True)
    assert "reopen" in _body(told)
    ticket = _ticket(core)
    assert (ticket.status, ticket.resolved_at is not None) == ("resolved", True)
    assert ticket.next_action_at is not None  # resolved -> closed after close_resolved_after
    _agent_mail(core, "#reopen")
    assert _ticket(core).status == "open"


def test_reply_with_a_command_relays_and_applies_it(core: Core) -> None:
    _open(core)
    seen = _last_outbox_id(core)
    _agent_mail(core, "#resolve\n\nThis is fixed now." + QUOTE)
    rows = _outbox(core, after=seen)
    assert [(r.template, r.recipient) for r in rows] == [
        ("agent_reply", REQUESTER),
        ("resolved", REQUESTER),
    ]
    assert _body(rows[0]).startswith("This is fixed now.")
    assert _ticket(core).status == "resolved"


@pytest.mark.parametrize(
    ("commands", "problem"),
    [
        ("#priority whenever", "line 2: #priority: unknown priority 'whenever'"),
        ("#queue nowhere", "line 2: #queue: unknown queue 'nowhere'"),
        ("#assign mallory@evil.example", "mallory@evil.example is not an agent"),
        ("#assign not-an-address", "not an email address"),
        ("#frobnicate", "line 2: #frobnicate: unknown command"),
        ("#close now", "line 2: #close: takes no argument"),
        ("#tag", "line 2: #tag: takes one or more words"),
        ("#close\n#reopen", "line 3: #reopen conflicts with #close on line 2"),
    ],
)
def test_an_invalid_command_changes_nothing_and_answers_the_agent(
    core: Core, commands: str, problem: str
) -> None:
    _open(core)
    before = _ticket(core)
    seen = _last_outbox_id(core)
    _agent_mail(core, f"#tag touched\n{commands}\n\nDear customer, all done." + QUOTE)
    [error] = _outbox(core, after=seen)
    assert (error.template, error.recipient) == ("agent_error", AGENT)
    assert problem in _body(error)
    after = _ticket(core)
    for column in ("status", "priority", "queue", "assignee", "tags", "next_action_at"):
        assert getattr(after, column) == getattr(before, column), column
    assert any(e.startswith("note: commands refused") for e in _events(core))


def test_an_agent_is_answered_in_the_agents_language_when_the_requester_writes_chinese(
    core: Core,
) -> None:
    """agents.language (English by default), not the requester's: the ticket is Chinese."""
    _open(core, subject="无法登录", body="你好，我从今天早上开始无法登录。\n")
    seen = _last_outbox_id(core)
    _agent_mail(core, "#frobnicate\n\nDone." + QUOTE)
    [error] = _outbox(core, after=seen)
    assert error.template == "agent_error"
    assert "Commands not applied" in str(_parsed(error)["Subject"])
    assert "line 1: #frobnicate" in _body(error)
    [ack] = [row for row in _outbox(core) if row.template == "ack"]
    assert "工单" in _body(ack)  # the requester's: Chinese


# -- authentication -------------------------------------------------------------------------


@pytest.fixture
def dkim_key() -> tuple[bytes, bytes]:
    """A private key (PEM) and its DNS TXT record."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


@pytest.fixture
def strict_core(
    tmp_path: Path, db_url: str, clock: Clock, dkim_key: tuple[bytes, bytes]
) -> Iterator[Core]:
    settings = make_settings(
        tmp_path,
        db_url,
        agents={"require_authenticated": True, "trusted_authserv_id": "mx.example.org"},
    )
    records = {
        b"sel._domainkey.example.com.": dkim_key[1],
        b"sel._domainkey.evil.example.": dkim_key[1],
    }

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return records.get(name)

    with build_core(settings, clock=clock, dns=dns) as built:
        yield built


def _signed(raw: bytes, domain: bytes, key: bytes) -> bytes:
    headers = [b"from", b"to", b"subject", b"message-id", b"date"]
    return dkim.sign(raw, b"sel", domain, key, include_headers=headers) + raw


def _agent_reply(body: str = "Please clear your cache.") -> bytes:
    return build_mail(sender=AGENT, subject="Re: [MT-1] Cannot log in", body=body)


def test_forged_agent_cannot_close_or_speak(strict_core: Core) -> None:
    _open(strict_core)
    seen = _last_outbox_id(strict_core)
    result = strict_core.intake.submit(_agent_reply("#close\nDone, bye."), "smtp")
    assert result.ticket == 1  # kept on the ticket as an unverified note
    assert _ticket(strict_core, 1).status == "new"
    sent = _outbox(strict_core, after=seen)
    assert [(r.template, r.recipient) for r in sent] == [("agent_confirm", AGENT)]
    assert "Done, bye." in _body(sent[0])
    events = _events(strict_core, 1)
    assert "note: not applied: stored as an unverified note" in events
    assert any(e.startswith("confirm_requested: ") for e in events)


def test_dkim_signed_agent_is_trusted(strict_core: Core, dkim_key: tuple[bytes, bytes]) -> None:
    _open(strict_core)
    seen = _last_outbox_id(strict_core)
    strict_core.intake.submit(_signed(_agent_reply(), b"example.com", dkim_key[0]), "smtp")
    assert [r.template for r in _outbox(strict_core, after=seen)] == ["agent_reply"]
    assert _ticket(strict_core).status == "pending"
    assert "authenticated: agent authenticated: dkim pass d=example.com" in _events(strict_core)


def test_dkim_of_another_domain_or_a_tampered_mail_is_no_proof(
    strict_core: Core, dkim_key: tuple[bytes, bytes]
) -> None:
    _open(strict_core)
    own_domain = _signed(_agent_reply("#close"), b"evil.example", dkim_key[0])
    assert strict_core.intake.submit(own_domain, "smtp").ticket == 1
    signed = _signed(_agent_reply("#resolve"), b"example.com", dkim_key[0])
    tampered = signed.replace(b"#resolve", b"#close\r\n")
    assert strict_core.intake.submit(tampered, "smtp").ticket == 1
    assert _ticket(strict_core, 1).status == "new"
    kinds = [e for e in _events(strict_core) if e.startswith("received: ")]
    assert kinds[1:] == ["received: unverified from agent@example.com via smtp"] * 2


def test_a_mail_parsed_on_the_event_loop_asks_dns_from_another_thread(
    tmp_path: Path, db_url: str, clock: Clock, dkim_key: tuple[bytes, bytes]
) -> None:
    """The daemon parses a small mail on the loop's thread (ParsePool.submit_nearby);
    checking an agent's DKIM must then not block the loop on DNS."""
    settings = make_settings(
        tmp_path,
        db_url,
        agents={"require_authenticated": True, "trusted_authserv_id": "mx.example.org"},
    )
    asked_from: list[str] = []

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        asked_from.append(threading.current_thread().name)
        return dkim_key[1] if name == b"sel._domainkey.example.com." else None

    with build_core(settings, clock=clock, dns=dns) as core:
        _open(core)
        assert core.parser is not None
        writer = Writer(core.engine)
        try:
            signed = _signed(_agent_reply(), b"example.com", dkim_key[0])
            result = asyncio.run(
                core.intake.accept(
                    signed,
                    "smtp",
                    notify=True,
                    run=core.intake.in_thread(writer),
                    parse=core.parser.submit_nearby,
                )
            )
        finally:
            writer.shutdown()
        assert (result.ticket, _ticket(core).status) == (1, "pending")
        assert asked_from and threading.main_thread().name not in asked_from


def test_authentication_results_of_our_own_server_count(strict_core: Core) -> None:
    _open(strict_core)
    forged_above = "mx.evil.example; dkim=pass header.d=example.com"
    ours = "mx.example.org; dkim=pass header.d=example.com header.s=sel"
    vouched = build_mail(
        sender=AGENT,
        subject="Re: [MT-1] Cannot log in",
        body="#resolve",
        headers={"Authentication-Results": ours},
    )
    assert strict_core.intake.submit(vouched, "smtp").ticket == 1
    assert _ticket(strict_core).status == "new"  # not from a trusted relay: not read
    assert strict_core.intake.submit(vouched, "smtp", trusted=True).outcome == "duplicate"
    again = vouched.replace(b"Message-ID: <", b"Message-ID: <again-")
    assert strict_core.intake.submit(again, "smtp", trusted=True).ticket == 1
    assert _ticket(strict_core).status == "resolved"
    untrusted = build_mail(
        sender=AGENT,
        subject="Re: [MT-1] Cannot log in",
        body="#reopen",
        headers={"Authentication-Results": forged_above},
    )
    assert strict_core.intake.submit(untrusted, "smtp", trusted=True).ticket == 1
    assert _ticket(strict_core).status == "resolved"


# -- requesters -----------------------------------------------------------------------------


def test_requester_close_closes_their_ticket(core: Core) -> None:
    _open(core, cc="carol@customer.example")
    core.intake.submit(
        build_mail(sender="carol@customer.example", subject="Re: [MT-1] x", body="#close"), "smtp"
    )
    assert _ticket(core).status == "new"  # a Cc participant may not close it
    core.intake.submit(build_mail(subject="Re: [MT-1] x", body="#close\nThanks, it works."), "smtp")
    assert _ticket(core).status == "closed"
    assert "status: new -> closed: reply from alice@customer.example" in _events(core)


def test_status_request_lists_the_senders_tickets(core: Core) -> None:
    _open(core)
    core.intake.submit(build_mail(subject="Second problem", message_id="<q2@c.example>"), "smtp")
    core.intake.submit(build_mail(sender="bob@other.example", subject="Bob's"), "smtp")
    seen = _last_outbox_id(core)
    result = core.intake.submit(build_mail(subject="我的工单", body="?"), "smtp")
    assert (result.outcome, result.ticket) == ("stored", None)
    assert len(_tickets(core)) == 3  # no ticket opened
    [answer] = _outbox(core, after=seen)
    assert (answer.template, answer.recipient, answer.ticket_number) == ("status", REQUESTER, None)
    body = _body(answer)
    assert "[MT-1]" in body and "[MT-2]" in body and "[MT-3]" not in body
    assert "Cannot log in" in body and "Second problem" in body
    with Session(core.engine) as session:
        [row] = session.exec(select(Inbound).where(Inbound.ticket_number == None)).all()  # noqa: E711
    assert row.state == "processed"


def test_status_request_from_an_auto_responder_is_not_answered(core: Core) -> None:
    seen = _last_outbox_id(core)
    auto = build_mail(subject="Status", headers={"Auto-Submitted": "auto-replied"})
    assert core.intake.submit(auto, "smtp").outcome == "ignored"
    assert _outbox(core, after=seen) == []


def test_new_mail_mentioning_own_ticket_is_linked(core: Core) -> None:
    _open(core)
    mention = build_mail(subject="Another thing", body="About MT-1: it happened again.")
    assert core.intake.submit(mention, "smtp").ticket == 2
    assert _ticket(core, 2).linked_to == 1
    stranger = build_mail(sender="bob@other.example", subject="x", body="Like MT-1 I think")
    assert core.intake.submit(stranger, "smtp").ticket == 3
    assert _ticket(core, 3).linked_to is None


def test_spam_from_a_trusted_relay_waits_for_an_agents_notspam(strict_core: Core) -> None:
    spam = build_mail(
        sender=f"Alice <{REQUESTER}>",
        subject="Cannot log in",
        headers={"X-Spam-Flag": "YES", "X-Spam-Status": "Yes, score=9.1"},
    )
    assert strict_core.intake.submit(spam, "smtp", trusted=True).ticket == 1
    assert _ticket(strict_core).status == "spam"
    assert _outbox(strict_core) == []  # no acknowledgement to a forged From, no notice
    release = build_mail(
        sender=AGENT,
        subject="Re: [MT-1] Cannot log in",
        body="#notspam",
        headers={"Authentication-Results": "mx.example.org; dkim=pass header.d=example.com"},
    )
    assert strict_core.intake.submit(release, "smtp", trusted=True).ticket == 1
    assert _ticket(strict_core).status == "open"
    assert "status: spam -> open: commands from agent@example.com" in _events(strict_core)
