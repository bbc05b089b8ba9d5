"""guard.classify: automatic or not, and a bounce or not, from parsed mails."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailticket.guard import Verdict, classify
from mailticket.mail import parse
from tests.conftest import build_mail

BOUNCES = Path(__file__).resolve().parent / "mails" / "bounces"
OWN = {"support@example.org"}


@pytest.mark.parametrize(
    "name",
    ["qmail.eml", "exim.eml", "exchange.eml", "gmail.eml", "postfix.eml", "domino.eml"],
)
def test_failure_notices_are_automatic_bounces(name: str) -> None:
    verdict = classify(parse((BOUNCES / name).read_bytes()), OWN)
    assert verdict.is_bounce and verdict.automatic
    assert "delivery status notification" in verdict.reasons


def test_out_of_office_is_automatic_but_no_bounce() -> None:
    verdict = classify(parse((BOUNCES / "out_of_office.eml").read_bytes()), OWN)
    assert verdict.automatic and not verdict.is_bounce


def test_a_person_forwarding_a_bounce_is_answered() -> None:
    verdict = classify(parse((BOUNCES / "forwarded_bounce.eml").read_bytes()), OWN)
    assert verdict == Verdict(automatic=False, reasons=(), is_bounce=False)


@pytest.mark.parametrize(
    ("subject", "headers", "reason"),
    [
        ("Automatic reply: Cannot log in", {}, "auto-reply subject"),
        ("Out of Office: back on Monday", {}, "auto-reply subject"),
        ("自动回复: 发票", {}, "auto-reply subject"),
        ("Nyaan", {"X-Apple-Action": "VACATION"}, "X-Apple-Action: vacation"),
        ("Hello", {"Return-Path": "<>"}, "null Return-Path"),
        ("Hello", {"X-MS-Exchange-Inbox-Rules-Loop": "a@b.example"}, "autoresponder header"),
    ],
)
def test_auto_replies_without_rfc3834_headers(
    subject: str, headers: dict[str, str], reason: str
) -> None:
    verdict = classify(parse(build_mail(subject=subject, headers=headers)), OWN)
    assert verdict.automatic and not verdict.is_bounce
    assert any(found.startswith(reason) for found in verdict.reasons)


@pytest.mark.parametrize(
    "subject", ["Re: Automatic reply: Cannot log in", "Out of office hours support?", "Hello"]
)
def test_people_writing_about_auto_replies_are_not_automatic(subject: str) -> None:
    assert not classify(parse(build_mail(subject=subject)), OWN).automatic
