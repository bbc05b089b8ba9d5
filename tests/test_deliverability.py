"""What receivers check before they trust a mail, for every shipped template in English and
Chinese composed by notices.compose: one valid Date, Message-ID, MIME-Version, From, To and
Subject; a text/plain part (multipart/alternative with an HTML template); 7-bit, CRLF,
short lines; and the bytes parse back under ``email.policy.default`` without a defect."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

import pytest

from mailticket.outbound.notices import Envelope, Rendered, Renderer, compose
from tests.test_templates import EXTRA, TEMPLATES, context

NAMES = sorted(path.name.removesuffix(".txt.j2") for path in TEMPLATES.glob("*.txt.j2"))
CHINESE = sorted(path.name.removesuffix(".txt.j2") for path in (TEMPLATES / "zh").glob("*.txt.j2"))
SHIPPED = [(name, "en") for name in NAMES] + [(name, "zh") for name in CHINESE]
SENT_AT = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
MSG_ID = re.compile(r"<[^<>@\s]+@[^<>@\s]+>")
ONCE = ("Date", "Message-ID", "MIME-Version", "From", "To", "Subject")


def envelope(sender: str = "support@example.com", to: str = "bob@example.org") -> Envelope:
    """As answers.py and followup.py fill it: our address, the requester's, the thread."""
    return Envelope(
        sender=sender,
        to=to,
        cc=("carol@example.net",),
        message_id="<MT-7.k3j5x0q2@example.com>",
        in_reply_to="<CAF=q1+x@mail.example.org>",
        references=("<q0@example.org>", "<CAF=q1+x@mail.example.org>"),
        auto_submitted="auto-replied",
        date=SENT_AT,
        reply_to="support@example.com",
    )


def parsed(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def defects(message: Message) -> list[str]:
    """Every defect the parser found, in any part or header."""
    found = []
    for part in message.walk():
        found += [f"{part.get_content_type()}: {d!r}" for d in part.defects]
        for name, value in part.items():
            found += [f"{name}: {d!r}" for d in getattr(value, "defects", ())]
    return found


def assert_deliverable(raw: bytes, rendered: Rendered, sent: Envelope) -> EmailMessage:
    assert raw.isascii()  # 7-bit: no relay needs 8BITMIME, none has to convert it
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    head, _, body = raw.partition(b"\r\n\r\n")
    assert max(len(line) for line in head.split(b"\r\n")) <= 78  # RFC 5322 2.1.1 SHOULD
    assert max(len(line) for line in body.split(b"\r\n")) <= 998  # RFC 5322 2.1.1 MUST
    message = parsed(raw)
    assert defects(message) == []
    assert [len(message.get_all(name, [])) for name in ONCE] == [1] * len(ONCE)
    assert message["Date"].datetime == sent.date
    assert MSG_ID.fullmatch(message["Message-ID"]) and message["Message-ID"] == sent.message_id
    assert message["MIME-Version"] == "1.0"
    assert [a.addr_spec for a in message["From"].addresses] == ["support@example.com"]
    assert [a.addr_spec for a in message["To"].addresses] == ["bob@example.org"]
    assert message["Subject"] == rendered.subject
    plain = message.get_body(preferencelist=("plain",))
    assert plain is not None and plain.get_content_type() == "text/plain"
    charset = plain.get_content_charset()
    assert charset == ("us-ascii" if rendered.text.isascii() else "utf-8")
    assert plain.get_content().replace("\r\n", "\n") == rendered.text
    return message


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer([TEMPLATES])


def test_every_shipped_template_is_covered() -> None:
    assert len(SHIPPED) >= 26
    assert set(CHINESE) == set(NAMES)


@pytest.mark.parametrize(("name", "language"), SHIPPED)
def test_text_only(renderer: Renderer, name: str, language: str) -> None:
    rendered = renderer.render(name, language, context(**EXTRA.get(name, {})))
    sent = envelope()

    message = assert_deliverable(compose(rendered, sent), rendered, sent)

    assert message.get_content_type() == "text/plain"
    assert not message.is_multipart()


@pytest.mark.parametrize(("name", "language"), SHIPPED)
def test_with_an_html_template(tmp_path: Path, name: str, language: str) -> None:
    (tmp_path / f"{name}.html.j2").write_text(
        "<p>{{ ticket.tag }} {{ ticket.subject }}：您好 &amp; hello</p>\n", encoding="utf-8"
    )
    renderer = Renderer([tmp_path, TEMPLATES])
    rendered = renderer.render(name, language, context(**EXTRA.get(name, {})))
    sent = envelope()
    assert rendered.html is not None

    message = assert_deliverable(compose(rendered, sent), rendered, sent)

    assert message.get_content_type() == "multipart/alternative"
    kinds = [part.get_content_type() for part in message.iter_parts()]
    assert kinds == ["text/plain", "text/html"]  # the richest last, as RFC 2046 wants
    html = message.get_body(preferencelist=("html",))
    assert html is not None and html.get_content_charset() == "utf-8"
    assert html.get_content() == rendered.html


def test_a_long_thread_folds_its_headers(renderer: Renderer) -> None:
    rendered = renderer.render("agent_reply", "zh", context(**EXTRA["agent_reply"]))
    long_thread = tuple(f"<reply-{n}.{'x' * 30}@mail.example.org>" for n in range(30))
    sent = replace(envelope(), references=long_thread)

    message = assert_deliverable(compose(rendered, sent), rendered, sent)

    assert message["References"].split() == list(long_thread[-20:])


def test_a_chinese_display_name_keeps_the_address_readable(renderer: Renderer) -> None:
    rendered = renderer.render("ack", "zh", context())
    sent = envelope(sender="技术支持 <support@example.com>", to="张三 <bob@example.org>")

    message = assert_deliverable(compose(rendered, sent), rendered, sent)

    assert message["From"].addresses[0].display_name == "技术支持"
