"""The shipped rules pick the payment acknowledgement, which asks for what is missing."""

from __future__ import annotations

import shutil
from email import message_from_bytes, policy
from pathlib import Path

from sqlmodel import Session, col, select

from mailticket.core import build_core
from mailticket.models import Outbox
from mailticket.outbox import message_bytes
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
