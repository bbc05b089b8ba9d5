"""One builder for the envelope of every mail we send on a ticket (answers, relays and the
follow-up sweep's reminders): the same sender, signing and threading, bounded lists."""

from __future__ import annotations

from datetime import UTC, datetime

from mailticket.decide.threads import MessageIdSigner
from mailticket.outbound.answers import REFERENCES_DEPTH, ticket_envelope
from mailticket.parse.mail import parse
from mailticket.settings import TicketSettings
from tests.conftest import build_mail

NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
SETTINGS = TicketSettings(support_address="support@example.org")
SIGNER = MessageIdSigner(b"test-secret", "MT", "example.org")
THREAD = [f"<m{n}@example.org>" for n in range(30)]


def test_a_long_conversation_is_referenced_by_its_newest_ids() -> None:
    envelope = ticket_envelope(
        SETTINGS, SIGNER, 7, "alice@customer.example", THREAD, NOW, auto_submitted=None
    )
    assert envelope.in_reply_to == THREAD[-1]
    assert envelope.references == tuple(THREAD[-REFERENCES_DEPTH:])
    assert SIGNER.verify(envelope.message_id) == 7
    assert SIGNER.sent_to(envelope.message_id, "alice@customer.example")
    assert (envelope.sender, envelope.reply_to) == ("support@example.org", "support@example.org")


def test_the_first_answer_threads_under_the_writers_own_mail_with_bounded_references() -> None:
    chain = " ".join(f"<old{n}@customer.example>" for n in range(50))
    mail = parse(build_mail(message_id="<q@customer.example>", references=chain))
    to_writer = ticket_envelope(
        SETTINGS, SIGNER, 7, mail.from_addr, (), NOW, auto_submitted="auto-replied", answering=mail
    )
    assert to_writer.in_reply_to == "<q@customer.example>"
    assert len(to_writer.references) == REFERENCES_DEPTH
    assert to_writer.references[-1] == "<q@customer.example>"
    to_agent = ticket_envelope(
        SETTINGS, SIGNER, 7, "agent@example.com", (), NOW, auto_submitted=None, answering=mail
    )
    assert (to_agent.in_reply_to, to_agent.references) == (None, ())  # never another's ids
