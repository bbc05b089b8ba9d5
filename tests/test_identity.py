"""The one reading of a mail's identity: the table of From headers an attacker tries.

``mail.from_addr`` is the address intake keys on, rules see, authentication checks and
people are shown; ``identity_problems`` says when it must not act (an agent's commands,
new participants). Each row: the From header as sent, the address read, and whether the
identity is trusted to act.
"""

from __future__ import annotations

import pytest

from mailticket.parse.mail import parse

AGENT = "agent@corp.test"
TABLE = [
    # plain forms: one reading
    ("Agent <agent@corp.test>", AGENT, True),
    ("agent@corp.test", AGENT, True),
    ("<agent@corp.test>", AGENT, True),
    ('"Agent, Smith" <agent@corp.test>', AGENT, True),
    ("agent@corp.test (Agent)", AGENT, True),
    ("agent(comment)@corp.test", AGENT, True),
    ("Agent <AGENT@Corp.Test>", AGENT, True),
    ("=?utf-8?b?5byg5LiJ?= <agent@corp.test>", AGENT, True),
    ("=?gb2312?b?1cXI/Q==?= <agent@corp.test>", AGENT, True),
    ("Agent <agent@xn--bcher-kva.test>", "agent@xn--bcher-kva.test", True),
    ("Agent <agent@bücher.test>", "agent@xn--bcher-kva.test", True),
    # encoded words that decode into an address: two readings
    (
        "=?utf-8?b?Ig==?=x <agent@corp.test>=?utf-8?b?IiA8bWFsbG9yeUBldmlsLnRlc3Q+?=",
        AGENT,
        False,
    ),
    ("=?utf-8?q?Agent_=3Cmallory@evil.test=3E?= <agent@corp.test>", AGENT, False),
    ("=?utf-8?b?bWFsbG9yeUBldmlsLnRlc3Q=?= <agent@corp.test>", AGENT, False),
    # an address outside the angle brackets, or two of them
    ("agent@corp.test <mallory@evil.test>", None, False),
    ("Agent <agent@corp.test> mallory@evil.test", None, False),
    # a comment that looks like an address: the strict and lenient readings agree
    ("agent@corp.test (comment <mallory@evil.test>)", AGENT, True),
    # group syntax: one mailbox in a group is still one mailbox
    ("undisclosed: agent@corp.test;", AGENT, True),
    ("team: agent@corp.test, other@corp.test;", None, False),
]


def _mail(from_header: str, extra: str = "") -> bytes:
    return (
        f"From: {from_header}\r\n{extra}To: support@example.org\r\n"
        "Subject: [MT-1] hello\r\nMessage-ID: <m1@corp.test>\r\n"
        "Date: Mon, 02 Nov 2026 09:00:00 +0000\r\n\r\n#close\r\n"
    ).encode()


@pytest.mark.parametrize(("header", "address", "trusted"), TABLE)
def test_one_reading_of_from(header: str, address: str | None, trusted: bool) -> None:
    try:
        mail = parse(_mail(header))
    except Exception as exc:  # two mailboxes: quarantined, which is trusted to nobody
        assert address is None and not trusted, exc
        return
    if address is not None:
        assert mail.from_addr == address
    assert (not mail.identity_problems) == trusted, mail.identity_problems


@pytest.mark.parametrize(
    "name",
    [
        "From",
        "Sender",
        "Reply-To",
        "To",
        "Cc",
        "Subject",
        "Message-ID",
        "Date",
        "In-Reply-To",
        "References",
    ],
)
@pytest.mark.parametrize("on_top", [True, False])
def test_a_repeated_singleton_header_is_never_trusted(name: str, on_top: bool) -> None:
    value = {
        "From": "Agent <agent@corp.test>",
        "Message-ID": "<m2@corp.test>",
        "Date": "Tue, 03 Nov 2026 09:00:00 +0000",
        "In-Reply-To": "<x@corp.test>",
        "References": "<x@corp.test>",
        "Subject": "[MT-2] other",
    }.get(name, "someone@corp.test")
    raw = _mail("Agent <agent@corp.test>")
    if name in ("Sender", "Reply-To", "Cc", "In-Reply-To", "References"):  # one copy first
        raw = raw.replace(b"To: support", f"{name}: {value}\r\nTo: support".encode(), 1)
    extra = f"{name}: {value}\r\n".encode()  # the second copy, above or below the first
    raw = extra + raw if on_top else raw.replace(b"\r\n\r\n", b"\r\n" + extra + b"\r\n", 1)
    mail = parse(raw)
    assert f"{name.lower()} header repeated" in mail.identity_problems


def test_sender_and_reply_to_are_read_the_same_way() -> None:
    tricky = "=?utf-8?q?x_=3Cmallory@evil.test=3E?= <agent@corp.test>"
    mail = parse(_mail("Agent <agent@corp.test>", f"Reply-To: {tricky}\r\n"))
    assert any(p.startswith("reply-to reads differently") for p in mail.identity_problems)
