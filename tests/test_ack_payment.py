"""The shipped rules pick the payment acknowledgement, which asks for what is missing."""

from __future__ import annotations

import shutil
from email import message_from_bytes, policy
from pathlib import Path

from sqlmodel import Session, col, select

from mailticket.outbound.outbox import message_bytes
from mailticket.runtime.core import Core, build_core
from mailticket.store import views
from mailticket.store.models import Outbox, Ticket
from tests.conftest import ROOT, Clock, build_mail, make_settings

TX = "0x" + "4f5b0e0a4c9e9b3b" * 4


def _ack(tmp_path: Path, db_url: str, subject: str, body: str) -> str:
    shutil.copy(ROOT / "rules.yaml", tmp_path / "rules.yaml")
    with build_core(make_settings(tmp_path, db_url), clock=Clock()) as core:
        core.intake.submit(build_mail(subject=subject, body=body), "smtp")
        with Session(core.engine) as session:
            ack = session.exec(select(Outbox).order_by(col(Outbox.id))).first()
    assert ack is not None and ack.template == "ack_payment"
    mail = message_from_bytes(message_bytes(ack), policy=policy.default)
    return str(mail.get_body(("plain",)).get_content())


def test_a_withdrawal_without_a_hash_is_asked_for_it(tmp_path: Path, db_url: str) -> None:
    text = _ack(tmp_path, db_url, "Withdrawal not received", "My withdrawal never arrived.\n")
    assert "please reply with the transaction hash" in text
    assert "which version of the app" in text


def test_a_withdrawal_with_a_hash_is_not_asked_again(tmp_path: Path, db_url: str) -> None:
    body = f"My withdrawal never arrived. TxID: {TX}\nApp version 3.2.1\n"
    text = _ack(tmp_path, db_url, "Withdrawal not received", body)
    assert f"We will trace transaction {TX}" in text
    assert "please reply with the transaction hash" not in text
    assert "which version of the app" not in text


def test_in_chinese_too(tmp_path: Path, db_url: str) -> None:
    text = _ack(tmp_path, db_url, "提现一直没到账", "我昨天提现到现在还没到账，请帮忙查一下。\n")
    assert "请回复本邮件并提供交易哈希" in text


def _fields_and_log(core: Core) -> tuple[dict[str, str], list[str]]:
    with Session(core.engine) as session:
        ticket = session.get(Ticket, 1)
        assert ticket is not None
        detail = views.ticket_detail(session, ticket, "MT")
    return detail["fields"], [e["detail"] for e in detail["events"] if e["kind"] == "field"]


def test_the_hash_a_requester_sends_in_a_reply_fills_the_field(tmp_path: Path, db_url: str) -> None:
    shutil.copy(ROOT / "rules.yaml", tmp_path / "rules.yaml")
    other = "0x" + "c0ffee00" * 8
    with build_core(make_settings(tmp_path, db_url), clock=Clock()) as core:
        core.intake.submit(
            build_mail(
                subject="提现一直没到账",
                body="我昨天提现到现在还没到账。\n",
                message_id="<p1@c.example>",
            ),
            "smtp",
        )
        assert _fields_and_log(core) == ({}, [])

        def reply(body: str, number: int) -> None:
            raw = build_mail(
                subject="Re: [MT-1] 提现一直没到账",
                body=body,
                message_id=f"<p{number}@c.example>",
                in_reply_to="<p1@c.example>",
            )
            assert core.intake.submit(raw, "smtp").ticket == 1

        reply(f"交易哈希：{TX}\n", 2)
        assert _fields_and_log(core) == ({"tx_hash": TX}, [f"tx_hash = {TX}"])
        reply(f"Sorry, wrong one. The right TxID is {other}\n\n> 交易哈希：{TX}\n", 3)
        assert _fields_and_log(core) == (
            {"tx_hash": other},
            [f"tx_hash = {TX}", f"tx_hash: {TX} -> {other}"],
        )
        reply(f"Any news?\n\n> The right TxID is {TX}\n", 4)  # a quote changes nothing
        assert _fields_and_log(core)[0] == {"tx_hash": other}
