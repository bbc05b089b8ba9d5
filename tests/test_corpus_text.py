"""Every word of the shared corpus comes through (see tests/test_corpus.py for the corpus).

Counted over the whole corpus, asserted rather than printed: no U+FFFD in a subject, a
sender's name or a body unless the bytes themselves are undecodable; no empty body on a
mail that has text somewhere (an independent walk with the standard library's own
parser finds it); raw 8-bit headers read as what they are; every TNEF blob unpacked.
Skips when the corpus is not here.
"""

from __future__ import annotations

import base64
import email
import re
from email import policy
from email.message import Message

import pytest
import tnefparse  # type: ignore[import-untyped]

from mailticket.errors import SenderRejected
from mailticket.parse.mail import InboundMail, parse
from tests.test_corpus import CORPUS, ENTRIES, UNDECODABLE, Entry

_TAGS = re.compile(rb"<[^>]*>|&nbsp;|\s")
# Mails whose only text is the returned message of a delivery report: that message is
# evidence about a bounce, not the report's own text (measured: 5 in the corpus).
REPORTS_WITHOUT_NOTICE = 5
# Measured before this test: 33 mails with text had an empty body (top-level and attached
# message/rfc822, digests, named text parts, TNEF), and 2 raw 8-bit headers read wrong.


def _messages() -> list[tuple[Entry, InboundMail]]:
    if not ENTRIES:
        pytest.skip(f"shared corpus not found at {CORPUS}: it ships only with the workspace")
    found = []
    for entry in ENTRIES:
        if entry.kind != "message":
            continue
        parsed = _parse(entry.read())
        if parsed is not None:
            found.append((entry, parsed))
    return found


def _parse(raw: bytes, *, retried: bool = False) -> InboundMail | None:
    """The mail, read once more with a valid From put first when its own is unusable."""
    try:
        return parse(raw)
    except SenderRejected:
        newline = b"\r\n" if b"\r\n" in raw[:4096] else b"\n"
        return (
            None if retried else _parse(b"From: corpus@example.com" + newline + raw, retried=True)
        )
    except Exception:  # test_corpus.py holds the parse contract
        return None


def _has_text(raw: bytes) -> bool:
    """Any text/plain or text/html part not marked as an attachment, at any depth, or a
    TNEF body, says the standard library's parser (and tnefparse)."""
    for part in email.message_from_bytes(raw, policy=policy.compat32).walk():
        if part.is_multipart():
            continue
        data = _payload(part)
        if part.get_content_type() in ("application/ms-tnef", "application/vnd.ms-tnef"):
            if _tnef_body(data):
                return True
        elif part.get_content_type() in ("text/plain", "text/html"):
            attached = str(part.get("content-disposition", "")).lower().startswith("attachment")
            if not attached and _TAGS.sub(b"", data):
                return True
    return False


def _payload(part: Message) -> bytes:
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _tnef_body(data: bytes) -> bool:
    try:
        return bool(tnefparse.TNEF(data, do_checksum=False).has_body())
    except Exception:
        return False


@pytest.fixture(scope="module")
def messages() -> list[tuple[Entry, InboundMail]]:
    return _messages()


def test_no_replacement_characters_unless_the_bytes_are_undecodable(
    messages: list[tuple[Entry, InboundMail]],
) -> None:
    replaced = {
        entry.name
        for entry, mail in messages
        if b"\xef\xbf\xbd" not in mail.raw
        and any("\ufffd" in text for text in (mail.subject, mail.from_name, mail.text))
    }
    assert replaced <= UNDECODABLE, sorted(replaced - UNDECODABLE)


def test_every_mail_with_text_has_a_body(messages: list[tuple[Entry, InboundMail]]) -> None:
    empty = [(e, m) for e, m in messages if not m.text.strip() and _has_text(m.raw)]
    not_reports = [e.name for e, m in empty if m.content_type != "multipart/report"]
    assert not not_reports
    assert len(empty) <= REPORTS_WITHOUT_NOTICE, [e.name for e, _ in empty]


@pytest.mark.parametrize(
    ("name", "field", "expected"),
    [
        ("rt/russian-subject-no-content-type", "subject", "тест тест"),  # was "耘釉 耘釉"
        ("rt/new-ticket-from-iso-8859-1-full", "from_name", "Wilhelmsen Håvard"),  # "H鍁ard"
        ("rt/new-ticket-from-iso-8859-1", "from_name", "Wilhelmsen Håvard"),
        (
            "mikel-mail/plain_emails/raw_email_string_in_date_field.eml",
            "subject",
            "NOTE: 한국말로 하는 것",
        ),
        ("rt/8859-15-message-series/msg1", "subject", "test äöüßÄÖÜß€"),  # declared: kept
    ],
)
def test_raw_and_declared_headers_read_right(
    messages: list[tuple[Entry, InboundMail]], name: str, field: str, expected: str
) -> None:
    found = {entry.name: mail for entry, mail in messages}
    assert getattr(found[name], field) == expected


def _winmail(blob: bytes) -> bytes:
    """A blob as Outlook sends it: the only part of a multipart/mixed mail."""
    return (
        b"From: outlook@example.com\r\nTo: support@example.com\r\nSubject: winmail\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="t"\r\n\r\n'
        b'--t\r\nContent-Type: application/ms-tnef; name="winmail.dat"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(blob) + b"--t--\r\n"
    )


def test_tnef_blobs_are_unpacked() -> None:
    if not ENTRIES:
        pytest.skip(f"shared corpus not found at {CORPUS}: it ships only with the workspace")
    wrong: list[str] = []
    blobs = [entry for entry in ENTRIES if entry.kind == "tnef-blob"]
    for entry in blobs:
        blob = entry.read()
        mail = parse(_winmail(blob))
        tnef = tnefparse.TNEF(blob, do_checksum=False)
        names = [a.filename for a in mail.attachments]
        if tnef.attachments or tnef.has_body():
            ok = len(names) == len(tnef.attachments) and "winmail.dat" not in names
            ok = ok and bool(mail.text.strip()) == tnef.has_body()
        else:  # nothing inside to show: the blob stays, as it came
            ok = [(a.filename, a.content) for a in mail.attachments] == [("winmail.dat", blob)]
        if not ok or base64.encodebytes(blob) not in mail.raw:
            wrong.append(f"{entry.name}: {names} {mail.text[:60]!r}")
    assert len(blobs) == 15
    assert not wrong, "\n".join(wrong)
