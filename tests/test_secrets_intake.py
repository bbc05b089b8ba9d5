"""The secrets guard through the real intake: agents never read a key, the requester is warned."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from mnemonic import Mnemonic
from sqlmodel import Session, col, select

from mailticket.decide.secret_scan import SecretReport, scan_inbound, scan_mail
from mailticket.outbound.outbox import message_bytes
from mailticket.parse.mail import parse
from mailticket.runtime.core import Core
from mailticket.store import views
from mailticket.store.models import Inbound, Outbox, Ticket
from tests.conftest import build_mail

PHRASE = Mnemonic("english").to_mnemonic(bytes(range(16)))  # a valid 12-word phrase
KEY = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"


def _outbox(core: Core) -> dict[str, str]:
    with Session(core.engine) as session:
        rows = session.exec(select(Outbox).order_by(col(Outbox.id))).all()
    return {
        f"{o.template} {o.recipient}": message_from_bytes(message_bytes(o), policy=policy.default)
        .get_body(("plain",))
        .get_content()
        for o in rows
    }


def test_a_mail_with_a_recovery_phrase_and_a_key_is_masked_for_agents(core: Core) -> None:
    body = f"My wallet is empty! My phrase:\n{PHRASE}\nand my key {KEY}\nTxID: 0x{'ab' * 32}\n"
    raw = build_mail(subject="wallet drained", body=body, message_id="<s1@c.example>")
    assert core.intake.submit(raw, "smtp").outcome == "stored"
    with Session(core.engine) as session:
        ticket = session.get(Ticket, 1)
        assert ticket is not None
        assert "secret-exposed" in ticket.tags.split()
        detail = views.ticket_detail(session, ticket, "MT")
        raw_detail = views.ticket_detail(session, ticket, "MT", raw=True)
        stored = session.exec(select(Inbound)).one()
    assert stored.raw == raw  # the raw mail is kept as it came

    mails = _outbox(core)
    agent = mails["agent_new agent@example.com"]
    assert PHRASE.split()[3] + " " + PHRASE.split()[4] not in agent
    assert KEY not in agent
    assert "[secret removed: recovery phrase]" in agent
    assert "[secret removed: private key]" in agent
    assert f"0x{'ab' * 32}" in agent  # a labelled transaction hash stays readable
    ack = mails["ack alice@customer.example"]
    assert "private key or recovery phrase" in ack and "Never send it" in ack
    assert PHRASE not in ack

    shown = detail["messages"][0]["text"]
    assert KEY not in shown and "[secret removed: private key]" in shown
    assert KEY in raw_detail["messages"][0]["text"]  # only with an explicit --raw


def test_a_plain_mail_gets_no_warning_and_no_tag(core: Core) -> None:
    core.intake.submit(build_mail(message_id="<s2@c.example>"), "smtp")
    with Session(core.engine) as session:
        ticket = session.get(Ticket, 1)
        assert ticket is not None and "secret-exposed" not in ticket.tags.split()
    assert "recovery phrase" not in _outbox(core)["ack alice@customer.example"]


def test_the_chinese_acknowledgement_warns_in_chinese(core: Core) -> None:
    zh_phrase = Mnemonic("chinese_simplified").to_mnemonic(bytes(range(16)))
    body = f"我的钱包被盗了，助记词是 {zh_phrase} 请帮忙。\n"
    core.intake.submit(
        build_mail(subject="钱包被盗", body=body, message_id="<s3@c.example>"), "smtp"
    )
    mails = _outbox(core)
    assert "请勿将私钥或助记词发送给任何人" in mails["ack alice@customer.example"]
    assert zh_phrase not in mails["agent_new agent@example.com"]


def test_a_labelled_transaction_hash_stays_and_a_word_beside_a_phrase_too(core: Core) -> None:
    tx = "0x" + "cd" * 32
    body = (
        f"The TxID of my withdrawal is {tx}, it is still pending.\n"
        f"Tx Hash (from Etherscan): 0x{'ef' * 32}\n"
        "Interests: music, video, game, movie, travel, dance, photo, garden, nature, sport, "
        "art, food, wine, family, coffee\n"
    )
    core.intake.submit(build_mail(body=body, message_id="<s4@c.example>"), "smtp")
    agent = _outbox(core)["agent_new agent@example.com"]
    assert tx in agent and f"0x{'ef' * 32}" in agent and "music, video, game" in agent
    assert "[secret removed" not in agent
    with Session(core.engine) as session:
        ticket = session.get(Ticket, 1)
        assert ticket is not None and "secret-exposed" not in ticket.tags.split()

    core.intake.submit(
        build_mail(body=f"{PHRASE} help!\n", subject="words", message_id="<s5@c.example>"), "smtp"
    )
    agent = _outbox(core)["agent_new agent@example.com"]
    assert "[secret removed: recovery phrase] help!" in agent


def test_a_key_only_in_a_link_is_found_and_masked(core: Core) -> None:
    message = EmailMessage()
    message["From"] = "Alice <alice@customer.example>"
    message["To"] = "support@example.org"
    message["Subject"] = "import does not work"
    message["Message-ID"] = "<s6@c.example>"
    message.set_content(f'<p>This <a href="https://w.example/import?pk={KEY}">link</a> fails</p>')
    message.replace_header("Content-Type", "text/html; charset=utf-8")
    core.intake.submit(message.as_bytes(), "smtp")
    with Session(core.engine) as session:
        ticket = session.get(Ticket, 1)
        assert ticket is not None and "secret-exposed" in ticket.tags.split()
        shown = views.ticket_detail(session, ticket, "MT")["messages"][0]
    assert KEY not in str(shown)
    assert KEY not in _outbox(core)["agent_new agent@example.com"]


def _forwarded() -> EmailMessage:
    forwarded = EmailMessage()
    forwarded["From"] = "bob@customer.example"
    forwarded["Subject"] = "my wallet"
    forwarded.set_content(f"words:\n{PHRASE}\n", cte="base64")
    return forwarded


@pytest.mark.parametrize("kind", ["text file", "forwarded mail"])
def test_a_phrase_in_an_attachment_tags_the_ticket(core: Core, kind: str) -> None:
    raw = EmailMessage()
    raw["From"] = "Alice <alice@customer.example>"
    raw["To"] = "support@example.org"
    raw["Subject"] = "see attached"
    raw["Message-ID"] = "<s7@c.example>"
    raw.set_content("Hello, my words are in the attached file.")
    if kind == "text file":
        raw.add_attachment(PHRASE.encode(), "text", "plain", filename="seed.txt")
    else:
        raw.add_attachment(_forwarded())
    mail = parse(raw.as_bytes())
    assert {a.filename for a in mail.attachments} <= {"seed.txt", "message.eml"}
    assert scan_inbound(mail) == SecretReport(True, ("mnemonic",))
    assert not scan_mail(mail.text, mail.html, mail.subject)  # only the attachment has it

    core.intake.submit(raw.as_bytes(), "smtp")
    with Session(core.engine) as session:
        ticket = session.get(Ticket, 1)
        assert ticket is not None and "secret-exposed" in ticket.tags.split()
    ack = _outbox(core)["ack alice@customer.example"]
    assert "private key or recovery phrase" in ack
