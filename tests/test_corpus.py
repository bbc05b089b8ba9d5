"""parse() over the shared development corpus of real-world mails (see its README.md).

One test per corpus folder keeps the output short; assertion messages name the files.
The corpus ships only with the development workspace: elsewhere these tests skip.
"""

from __future__ import annotations

import csv
import functools
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailticket.errors import MailRejected, ParseError, SenderRejected
from mailticket.parse.mail import InboundMail, parse

CORPUS = Path(
    os.environ.get("MAILTICKET_CORPUS") or Path(__file__).resolve().parents[2] / "shared" / "corpus"
)
CJK_CHARSETS = frozenset(
    {
        "gb2312",
        "gbk",
        "gb18030",
        "big5",
        "x-gbk",
        "euc-kr",
        "ks_c_5601-1987",
        "iso-2022-jp",
        "shift_jis",
    }
)

# Files whose subject or text may keep U+FFFD because their bytes cannot be decoded.
UNDECODABLE = {
    # The text/plain part is labelled utf-8 but is base64 of an anonymiser's "0000..." run:
    # its bytes (d3 4d 34 ...) are not UTF-8 and mean nothing in any other charset.
    "sisimai-set-of-emails/bsd/rfc3464-08.eml",
    # The upstream bug fixture: a utf-8 encoded-word subject whose base64 decodes to
    # invalid UTF-8 (9e 70 ee b1 ...), the very input PHP's imap_mime_header_decode rejects.
    "webklex-php-imap/imap_mime_header_decode_returns_false.eml",
}


@dataclass(frozen=True, slots=True)
class Entry:
    """One MANIFEST.tsv row."""

    source: str
    file: str
    kind: str
    category: str
    charsets: frozenset[str]

    @property
    def name(self) -> str:
        return f"{self.source}/{self.file}"

    def read(self) -> bytes:
        return (CORPUS / self.source / self.file).read_bytes()


def manifest() -> list[Entry]:
    """The corpus manifest, or nothing when the corpus is not here."""
    path = CORPUS / "MANIFEST.tsv"
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [
        Entry(
            r["source"],
            r["file"],
            r["kind"],
            r["category"],
            frozenset(r["charsets"].lower().split(",")) - {""},
        )
        for r in rows
    ]


ENTRIES = manifest()


def folders(kind: str, category: str | None = None) -> list[str]:
    """The folders holding files of ``kind`` (and ``category``); a placeholder that skips
    when the corpus is not here."""
    found = sorted({e.source for e in ENTRIES if e.kind == kind and category in (None, e.category)})
    return found or ["(no corpus)"]


def entries(folder: str, kind: str) -> list[Entry]:
    """The files of ``kind`` in ``folder``; skips the test when the corpus is missing."""
    if not ENTRIES:
        pytest.skip(
            f"shared corpus not found at {CORPUS}: it ships only with the development workspace"
        )
    return [entry for entry in ENTRIES if entry.source == folder and entry.kind == kind]


@functools.cache
def parse_all(folder: str, kind: str) -> list[tuple[Entry, InboundMail | Exception]]:
    """Each file of ``kind`` in ``folder`` with its mail or the exception parse raised,
    parsed once for all the tests below."""
    return [(entry, _parse_or_error(entry.read())) for entry in entries(folder, kind)]


def _parse_or_error(raw: bytes) -> InboundMail | Exception:
    try:
        return parse(raw)
    except Exception as error:  # test_messages_parse tells ParseError from the rest
        return error


def _with_a_sender(raw: bytes) -> InboundMail | Exception:
    """``raw`` read with a valid From put first (an invalid one of its own is left out)."""
    newline = b"\r\n" if b"\r\n" in raw[:4096] else b"\n"
    return _parse_or_error(b"From: corpus@example.com" + newline + raw)


@pytest.mark.parametrize("folder", folders("message"))
def test_messages_parse(folder: str) -> None:
    """The contract: an InboundMail or a MailRejected (quarantined raw), nothing else.

    Test fixtures without a From (MIME fragments) or with an unusable one are rejected
    for their sender; a bounce or an auto-reply never is, whatever its From says.
    """
    results = parse_all(folder, "message")
    refused = [f"{e.name}: {m}" for e, m in results if isinstance(m, ParseError)]
    rejected = [
        (e, m) for e, m in results if isinstance(m, MailRejected) and not isinstance(m, ParseError)
    ]
    crashed = [
        f"{e.name}: {type(m).__name__}: {m}"
        for e, m in results
        if isinstance(m, Exception) and not isinstance(m, MailRejected)
    ]
    automatic = [
        f"{e.name}: {m}"
        for e, m in rejected
        if isinstance(m, SenderRejected) and e.category in ("bounce", "auto-reply")
    ]
    print(f"{folder}: {len(results)} parsed, {len(refused)} ParseError {refused}")
    print(f"{folder}: {len(rejected)} rejected {[f'{e.name}: {m}' for e, m in rejected]}")
    assert not crashed, "\n".join(crashed)
    assert len(refused) <= len(results) // 50, "\n".join(refused)
    assert not automatic, "\n".join(automatic)
    assert all(str(m).startswith(("sender: ", "limit: ")) for _, m in rejected)


@pytest.mark.parametrize("folder", folders("message"))
def test_text_decodes_without_replacement(folder: str) -> None:
    """Charset and CJK mails decode exactly; anywhere else U+FFFD only with ``lossy`` set.

    A fixture rejected for its sender is read with a From added, so that its text is
    checked all the same.
    """
    lossy: list[str] = []
    failures: list[str] = []
    for entry, parsed in parse_all(folder, "message"):
        mail = _with_a_sender(entry.read()) if isinstance(parsed, SenderRejected) else parsed
        if isinstance(mail, Exception):
            continue
        lossy += [entry.name] if mail.lossy else []
        shown = f"{mail.subject}\n{mail.text}"
        replaced = "\ufffd" in shown and b"\xef\xbf\xbd" not in mail.raw
        strict = entry.category == "charset" or bool(entry.charsets & CJK_CHARSETS)
        if replaced and (strict or not mail.lossy) and entry.name not in UNDECODABLE:
            failures.append(f"{entry.name} ({','.join(sorted(entry.charsets))}): {shown[:120]!r}")
        if entry.name in UNDECODABLE and not mail.lossy:
            failures.append(f"{entry.name} decodes now: remove it from UNDECODABLE")
    print(f"{folder}: lossy {len(lossy)} {lossy}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("folder", folders("message", "bounce"))
def test_delivery_reports_are_recognised(folder: str) -> None:
    reports = [
        (entry, mail)
        for entry, mail in parse_all(folder, "message")
        if entry.category == "bounce"
        and isinstance(mail, InboundMail)
        and (mail.content_type, mail.report_type) == ("multipart/report", "delivery-status")
    ]
    if not reports:
        pytest.skip(f"{folder}: no multipart/report delivery-status bounces")
    missing = [entry.name for entry, mail in reports if mail.bounce is None]
    no_recipient = [
        entry.name for entry, mail in reports if not (mail.bounce and mail.bounce.recipients)
    ]
    recognised = len(reports) - len(missing)
    print(
        f"{folder}: {len(reports)} DSNs, {recognised} recognised, {len(no_recipient)} no recipient"
    )
    assert not missing, "\n".join(missing)
    # a few fixtures are cut down (an empty status part, fields in the wrong part)
    assert len(no_recipient) <= max(1, len(reports) // 10), "\n".join(no_recipient)


@pytest.mark.parametrize("folder", folders("body-only"))
def test_body_only_files_give_a_mail_or_parse_error(folder: str) -> None:
    results = parse_all(folder, "body-only")
    refused = [entry.name for entry, mail in results if isinstance(mail, MailRejected)]
    crashed = [
        f"{entry.name}: {mail!r}"
        for entry, mail in results
        if isinstance(mail, Exception) and not isinstance(mail, MailRejected)
    ]
    print(f"{folder}: {len(results) - len(refused)} read as mails, {len(refused)} refused")
    assert results
    assert not crashed, "\n".join(crashed)
