"""The one intake, end to end against SQLite and PostgreSQL (the db_url fixture)."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from mailticket.outbound.outbox import message_bytes
from mailticket.runtime.core import Core
from mailticket.store.models import Event, Inbound, Message, Outbox, Ticket, Undeliverable
from tests.conftest import Clock, build_mail, last_sent_to


def _tickets(core: Core) -> list[Ticket]:
    with Session(core.engine) as session:
        return list(session.exec(select(Ticket).order_by(col(Ticket.number))).all())


def _outbox(core: Core) -> list[Outbox]:
    with Session(core.engine) as session:
        return list(session.exec(select(Outbox).order_by(col(Outbox.id))).all())


def _events(core: Core, number: int) -> list[str]:
    with Session(core.engine) as session:
        rows = session.exec(select(Event).where(Event.ticket_number == number)).all()
        return [f"{e.kind}: {e.detail}" for e in rows]


def test_new_mail_opens_a_ticket_with_ack_and_agent_notifications(core: Core) -> None:
    result = core.intake.submit(build_mail(message_id="<q1@customer.example>"), "smtp")
    assert result.outcome == "stored"
    [ticket] = _tickets(core)
    assert (ticket.number, ticket.status, ticket.queue, ticket.priority) == (
        1,
        "new",
        "general",
        "normal",
    )
    assert ticket.requester == "alice@customer.example"
    assert ticket.due_at is not None
    outbox = _outbox(core)
    assert [(o.template, o.recipient, o.automatic) for o in outbox] == [
        ("ack", "alice@customer.example", True),
        ("agent_new", "agent@example.com", False),
        ("agent_new", "second@example.com", False),
    ]
    ack = message_from_bytes(message_bytes(outbox[0]), policy=policy.default)
    assert ack["Subject"] == "[MT-1] Cannot log in"
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["In-Reply-To"] == "<q1@customer.example>"
    assert core.signer.verify(ack["Message-ID"]) == 1
    events = _events(core, 1)
    assert any(e.startswith("routed: queue general, priority normal") for e in events)
    assert any(e.startswith("threaded: no tag") for e in events)


def test_same_mail_twice_is_stored_once(core: Core) -> None:
    raw = build_mail(message_id="<once@customer.example>")
    assert core.intake.submit(raw, "smtp").outcome == "stored"
    again = core.intake.submit(raw, "imap")
    assert again.outcome == "duplicate"
    assert len(_tickets(core)) == 1
    assert len(_outbox(core)) == 3


def test_mail_without_message_id_is_deduplicated_by_its_bytes(core: Core) -> None:
    raw = build_mail(message_id="")
    assert core.intake.submit(raw, "pipe").outcome == "stored"
    assert core.intake.submit(raw, "pipe").outcome == "duplicate"
    other = build_mail(message_id="", body="Something else\n")
    assert core.intake.submit(other, "pipe").outcome == "stored"
    assert len(_tickets(core)) == 2


def test_reply_with_tag_threads_and_reopens(core: Core, clock: Clock) -> None:
    core.intake.submit(build_mail(), "smtp")
    with Session(core.engine) as session:
        ticket = session.get(Ticket, 1)
        assert ticket is not None
        ticket.status = "pending"
        session.add(ticket)
        session.commit()
    clock.advance(hours=1)
    reply = build_mail(subject="Re: [MT-1] Cannot log in", body="Still broken.\n")
    result = core.intake.submit(reply, "smtp")
    assert (result.outcome, result.ticket) == ("stored", 1)
    [ticket] = _tickets(core)
    assert ticket.status == "open"
    assert any("pending -> open" in e for e in _events(core, 1))


def test_reply_by_signed_message_id_without_tag(core: Core) -> None:
    core.intake.submit(build_mail(), "smtp")
    ack_id = _outbox(core)[0].message_id
    reply = build_mail(subject="Re: your mail", in_reply_to=ack_id, references=ack_id)
    result = core.intake.submit(reply, "smtp")
    assert result.ticket == 1
    assert any("signed Message-ID" in e for e in _events(core, 1))


def test_reply_by_references_to_their_own_message_id(core: Core) -> None:
    core.intake.submit(build_mail(message_id="<first@customer.example>"), "smtp")
    follow_up = build_mail(subject="one more thing", references="<first@customer.example>")
    assert core.intake.submit(follow_up, "smtp").ticket == 1


def test_foreign_sender_naming_a_ticket_opens_a_linked_ticket(core: Core) -> None:
    core.intake.submit(build_mail(), "smtp")
    intruder = build_mail(sender="mallory@evil.example", subject="Re: [MT-1] close this")
    result = core.intake.submit(intruder, "smtp")
    assert result.ticket == 2
    second = _tickets(core)[1]
    assert second.linked_to == 1
    assert second.requester == "mallory@evil.example"


def test_foreign_reply_as_note(tmp_path: Path, db_url: str, clock: Clock) -> None:
    from mailticket.runtime.core import build_core
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, db_url, tickets={"foreign_reply": "note"})
    core = build_core(settings, clock=clock)
    core.intake.submit(build_mail(), "smtp")
    result = core.intake.submit(build_mail(sender="bob@other.example", subject="[MT-1] hi"), "smtp")
    assert result.ticket == 1
    with Session(core.engine) as session:
        kinds = session.exec(select(Message.kind).where(Message.direction == "in")).all()
    assert list(kinds) == ["request", "unverified"]
    told = [o for o in _outbox(core) if o.template == "agent_update"]
    assert [o.recipient for o in told] == ["agent@example.com", "second@example.com"]
    body = message_from_bytes(message_bytes(told[0]), policy=policy.default).get_body(("plain",))
    assert body is not None
    assert "UNVERIFIED: bob@other.example is not on this ticket." in body.get_content()
    assert _tickets(core)[0].status == "new"  # nothing reopened or changed by a stranger
    core.close()


def test_cc_participant_may_reply(core: Core) -> None:
    """An unverified requester's Cc is only proposed; once an agent adds it, it may write."""
    core.intake.submit(build_mail(cc="Bob <bob@customer.example>"), "smtp")
    add = build_mail(
        sender="agent@example.com",
        subject="Re: [MT-1] Cannot log in",
        body="#cc add bob@customer.example",
        in_reply_to=last_sent_to(core, "agent@example.com"),
    )
    assert core.intake.submit(add, "smtp").ticket == 1
    reply = build_mail(sender="bob@customer.example", subject="Re: [MT-1] Cannot log in")
    assert core.intake.submit(reply, "smtp").ticket == 1
    assert len(_tickets(core)) == 1


def test_a_stranger_in_an_unverified_cc_does_not_join(core: Core) -> None:
    core.intake.submit(build_mail(cc="Bob <bob@customer.example>"), "smtp")
    reply = build_mail(sender="bob@customer.example", subject="Re: [MT-1] Cannot log in")
    assert core.intake.submit(reply, "smtp").ticket == 2  # a new ticket, linked
    assert len(_tickets(core)) == 2


def test_reply_long_after_close_opens_a_new_linked_ticket(core: Core, clock: Clock) -> None:
    core.intake.submit(build_mail(), "smtp")
    with Session(core.engine) as session:
        ticket = session.get(Ticket, 1)
        assert ticket is not None
        ticket.status, ticket.closed_at = "closed", clock.now
        session.add(ticket)
        session.commit()
    clock.advance(days=31)
    result = core.intake.submit(build_mail(subject="Re: [MT-1] Cannot log in"), "smtp")
    assert result.ticket == 2
    assert _tickets(core)[1].linked_to == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-replied"},
        {"X-Autoreply": "yes"},
        {"Precedence": "bulk"},
        {"List-Id": "<users.lists.example>"},
    ],
)
def test_automatic_mail_gets_no_acknowledgement(core: Core, headers: dict[str, str]) -> None:
    result = core.intake.submit(build_mail(headers=headers), "smtp")
    assert all(o.template != "ack" for o in _outbox(core))
    assert result.outcome in ("stored", "ignored")


def test_auto_reply_is_not_a_ticket_but_is_kept(core: Core) -> None:
    result = core.intake.submit(build_mail(headers={"Auto-Submitted": "auto-replied"}), "smtp")
    assert result.outcome == "ignored"
    assert _tickets(core) == []
    with Session(core.engine) as session:
        assert session.exec(select(Inbound.state)).all() == ["ignored"]


def test_per_sender_cap_on_automatic_answers(tmp_path: Path, db_url: str, clock: Clock) -> None:
    from mailticket.runtime.core import build_core
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, db_url, tickets={"max_auto_replies_per_sender": 2})
    core = build_core(settings, clock=clock)
    for n in range(4):
        core.intake.submit(build_mail(subject=f"question {n}"), "smtp")
    acks = [o for o in _outbox(core) if o.template == "ack"]
    assert len(acks) == 2
    clock.advance(hours=25)
    core.intake.submit(build_mail(subject="next day"), "smtp")
    assert len([o for o in _outbox(core) if o.template == "ack"]) == 3
    core.engine.dispose()


def test_import_without_notify_sends_nothing(core: Core) -> None:
    core.intake.submit(build_mail(), "import", notify=False)
    assert len(_tickets(core)) == 1
    assert _outbox(core) == []


def test_bounce_of_our_mail_is_recorded_on_the_ticket(core: Core) -> None:
    core.intake.submit(build_mail(), "smtp")
    ack = _outbox(core)[0]
    dsn = _dsn(ack.message_id, "alice@customer.example")
    result = core.intake.submit(dsn, "smtp")
    assert (result.outcome, result.ticket) == ("stored", 1)
    assert len(_tickets(core)) == 1
    assert any(e.startswith("delivery_failed: alice@customer.example") for e in _events(core, 1))
    with Session(core.engine) as session:
        assert session.get(Undeliverable, "alice@customer.example") is not None
    core.intake.submit(build_mail(subject="another question"), "smtp")
    assert [o.template for o in _outbox(core)].count("ack") == 1


def _dsn(original_id: str, recipient: str) -> bytes:
    return (
        "From: MAILER-DAEMON@mx.customer.example\r\n"
        "To: support@example.org\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-1@mx.customer.example>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        "\r\n--B\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.customer.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: support@example.org\r\nTo: {recipient}\r\nMessage-ID: {original_id}\r\n"
        "Subject: [MT-1] Cannot log in\r\n"
        "\r\n--B--\r\n"
    ).encode()


def test_bounce_for_unknown_mail_opens_no_ticket(core: Core) -> None:
    result = core.intake.submit(_dsn("<not-ours@elsewhere>", "x@y.example"), "smtp")
    assert result.outcome == "ignored"
    assert _tickets(core) == []


def test_unparseable_mail_is_quarantined_and_replayable(core: Core) -> None:
    result = core.intake.submit(b"", "pipe")
    assert result.outcome == "quarantined"
    with Session(core.engine) as session:
        [row] = session.exec(select(Inbound)).all()
    assert row.state == "quarantined" and row.raw == b""


def test_a_failing_step_quarantines_and_the_next_mail_goes_on(
    tmp_path: Path, db_url: str, clock: Clock
) -> None:
    from mailticket.runtime.core import build_core
    from tests.conftest import make_settings

    broken = tmp_path / "broken-templates"
    broken.mkdir()
    (broken / "ack.txt.j2").write_text("Subject: {{ ticket.nope }}\n\nx\n", encoding="utf-8")
    core = build_core(
        make_settings(tmp_path, db_url, tickets={"templates_dir": str(broken)}), clock=clock
    )
    first = core.intake.submit(build_mail(subject="first"), "smtp")
    assert first.outcome == "quarantined"
    assert "UndefinedError" in first.detail
    with Session(core.engine) as session:
        row_id = session.exec(select(Inbound.id)).one()
    assert core.intake.replay(row_id or 0).outcome == "quarantined"  # not fixed yet: still kept
    (broken / "ack.txt.j2").unlink()  # the admin removes the broken override
    second = core.intake.submit(build_mail(subject="second"), "smtp")
    assert second.outcome == "stored"
    with Session(core.engine) as session:
        quarantined = session.exec(select(Inbound).where(Inbound.state == "quarantined")).one()
    assert quarantined.raw.count(b"first") == 1
    replayed = core.intake.replay(quarantined.id or 0)
    assert replayed.outcome == "stored"
    assert sorted(t.subject for t in _tickets(core)) == ["first", "second"]
    core.engine.dispose()


def test_chinese_mail_gets_the_chinese_acknowledgement(core: Core) -> None:
    raw = build_mail(
        subject="账户无法登录", body="你好，我的账户从今天早上开始无法登录，请帮忙处理。\n"
    )
    core.intake.submit(raw, "smtp")
    ack = message_from_bytes(message_bytes(_outbox(core)[0]), policy=policy.default)
    assert "我们已收到您的请求" in ack.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert ack["Subject"] == "[MT-1] 账户无法登录"


# -- identity: the Message-ID and what the mail says -------------------------------------


def _events_of(core: Core, number: int = 1) -> list[str]:
    from mailticket.store.models import Event

    with Session(core.engine) as session:
        query = select(Event).where(Event.ticket_number == number)
        return [f"{e.kind}: {e.detail}" for e in session.exec(query).all()]


def test_copies_that_differ_only_in_trace_headers_and_encoding_are_one_mail(core: Core) -> None:
    """The SMTP copy and the IMAP copy (Dovecot's Return-Path, Delivered-To, Received), and a
    relay that re-encoded the 8-bit body as quoted-printable: one mail."""
    raw = build_mail(
        body="Grüße, ich kann mich nicht anmelden.\n", message_id="<copy@customer.example>"
    )
    assert core.intake.submit(raw, "smtp").outcome == "stored"
    traced = (
        b"Return-Path: <alice@customer.example>\r\nDelivered-To: support@example.org\r\n"
        b"Received: from mx (mx [10.0.0.1]) by imap; Mon, 2 Nov 2026 09:00:05 +0000\r\n" + raw
    )
    assert core.intake.submit(traced, "imap").outcome == "duplicate"
    qp = raw.replace(b"8bit", b"quoted-printable").replace("Grüße".encode(), b"Gr=C3=BC=C3=9Fe")
    assert qp != raw
    assert core.intake.submit(qp, "import").outcome == "duplicate"
    assert len(_tickets(core)) == 1


def test_a_different_mail_reusing_a_message_id_is_stored_with_an_event(core: Core) -> None:
    first = build_mail(subject="Printer broken", message_id="<reused@phone.example>")
    second = build_mail(
        sender="Bob <bob@other.example>",
        subject="Invoice question",
        message_id="<reused@phone.example>",
    )
    assert core.intake.submit(first, "smtp").outcome == "stored"
    result = core.intake.submit(second, "smtp")
    assert (result.outcome, result.ticket) == ("stored", 2)
    assert any(
        e.startswith("message_id_reused: <reused@phone.example>") for e in _events_of(core, 2)
    )
    assert core.intake.submit(second, "smtp").outcome == "duplicate"  # and only once
    assert len(_tickets(core)) == 2


def test_a_mail_without_message_id_is_one_mail_with_crlf_or_lf(core: Core) -> None:
    raw = build_mail(message_id="")
    assert core.intake.submit(raw, "smtp").outcome == "stored"
    assert core.intake.submit(raw.replace(b"\r\n", b"\n"), "pipe").outcome == "duplicate"


# -- import keeps each mail's own date; its clocks start stopped -------------------------


def test_an_imported_backlog_keeps_its_dates_and_sends_nothing_until_someone_acts(
    core: Core, clock: Clock
) -> None:
    from datetime import UTC, datetime

    from mailticket.followup.sweep import FollowupSweep

    old = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
    raw = build_mail(date=old, message_id="<old-1@customer.example>")
    assert core.intake.submit(raw, "import", notify=False).outcome == "stored"
    [ticket] = _tickets(core)
    assert (ticket.created_at, ticket.due_at, ticket.next_action_at) == (old, None, None)
    sweep = FollowupSweep(
        core.engine, core.settings.tickets, core.rules, core.renderer, core.signer, core.clock
    )
    clock.advance(days=30)
    assert sweep.run() == 0 and _outbox(core) == []  # no reminder, no escalation
    reply = build_mail(subject="Re: [MT-1] Cannot log in", body="Still broken.")
    assert core.intake.submit(reply, "smtp").ticket == 1
    [ticket] = _tickets(core)
    assert ticket.due_at is not None and ticket.due_at > clock.now  # counted from now
    assert ticket.next_action_at is not None
    assert any(e.startswith("clock: first-response clock started") for e in _events_of(core))


def test_an_autoreply_from_someone_not_on_the_ticket_stays_on_it_quietly(core: Core) -> None:
    """A colleague's out-of-office answering our acknowledgement: no new linked ticket,
    no notice to every agent."""
    core.intake.submit(build_mail(), "smtp")
    before = len(_outbox(core))
    away = build_mail(
        sender="boss@customer.example",
        subject="Automatic reply: [MT-1] Cannot log in",
        body="I am out of the office until Monday.",
        headers={"Auto-Submitted": "auto-replied"},
    )
    result = core.intake.submit(away, "smtp")
    assert (result.outcome, result.ticket) == ("stored", 1)
    assert len(_tickets(core)) == 1 and len(_outbox(core)) == before


def test_an_imported_mail_without_date_takes_its_mailbox_time(core: Core, tmp_path: Path) -> None:
    import mailbox
    from datetime import UTC, datetime

    from mailticket.inbound.bulk_import import import_mailbox

    box = mailbox.mbox(tmp_path / "old.mbox")
    message = mailbox.mboxMessage(build_mail(message_id="<undated@customer.example>"))
    del message["Date"]
    message.set_from("alice@customer.example", (2024, 5, 6, 7, 8, 9, 0, 127, 0))
    box.add(message)
    box.close()
    assert import_mailbox(core.intake, tmp_path / "old.mbox", notify=False)["stored"] == 1
    [ticket] = _tickets(core)
    assert ticket.created_at == datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
