"""Parse raw bytes into an InboundMail (pure: no I/O, no clock).

Tolerant by design: broken MIME, unknown charsets and missing headers still give a
mail; text is never dropped (undecodable bytes are replaced and the mail is flagged
``lossy``). Three outcomes are refused, each a MailRejected that intake quarantines raw:
bytes that are not a mail at all (ParseError), a mail over a limit of
:mod:`mailticket.parse.limits` (LimitExceeded), and a mail from no usable sender
(SenderRejected: no From, no valid address in it, or several) unless it is a bounce or
an auto-reply, which may come from no one.

Nothing a sender writes can break a header line: decoded header values, display names
included, never hold control characters (an encoded word may decode to CR LF).

This module reads the envelope (headers, addresses, ids, date, language) and assembles
the mail; the stages it calls import nothing from it:

    mail -> mime_parts (body text, HTML, attachments)
         -> dsn        (delivery status reports)
         -> mime_tree, message_ids, charsets (shared, pure)
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from itertools import chain
from typing import Final

import email_validator
from email_validator import EmailNotValidError, validate_email

from mailticket.decide.secret_report import SecretReport
from mailticket.errors import LimitExceeded, MailRejected, ParseError, SenderRejected
from mailticket.parse import charsets, identity, limits, mime_tree
from mailticket.parse.dsn import Bounce, read_bounce
from mailticket.parse.message_ids import ids, message_id
from mailticket.parse.mime_parts import AttachedFile, read_body, safe_filename

__all__ = [
    "DEFAULT_MAX_ATTACHMENT_SIZE",
    "AttachedFile",
    "Bounce",
    "InboundMail",
    "language",
    "parse",
    "peek_message_id",
    "safe_filename",
    "sendable_address",
]

DEFAULT_MAX_ATTACHMENT_SIZE: Final = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class InboundMail:
    raw: bytes
    sha256: str
    message_id: str  # "<...>"; synthetic "<sha256-HEX@mailticket.invalid>" when missing
    has_message_id: bool
    from_addr: str  # lower-cased addr-spec, "" when missing or unparseable
    from_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    reply_to: tuple[str, ...]
    subject: str
    date: datetime | None  # timezone-aware
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]  # (lower-case name, decoded value), in order
    content_type: str  # top-level, lower-case
    report_type: str  # report-type parameter of multipart/report, lower-case, else ""
    text: str
    html: str
    attachments: tuple[AttachedFile, ...]
    language: str  # "zh" or "en"
    lossy: bool
    defects: tuple[str, ...]
    bounce: Bounce | None
    limit_notes: tuple[str, ...] = ()  # what a soft limit left out, one line each (see limits.py)
    # Secrets in the text, found where the mail was parsed (a worker process), so that
    # the store's one thread need not; None: not looked for yet (decide() then does).
    secrets: SecretReport | None = None
    # why the sender's identity must not act (an agent's commands, new participants):
    # a repeated singleton header, an ambiguous From/Sender/Reply-To (see identity.py)
    identity_problems: tuple[str, ...] = ()

    def header(self, name: str) -> tuple[str, ...]:
        """Every decoded value of header ``name`` (case-insensitive)."""
        key = name.lower()
        return tuple(value for hname, value in self.headers if hname == key)

    @property
    def dedupe_key(self) -> str:
        """Identity for idempotence: the Message-ID, or the bytes' hash when there is none."""
        return self.message_id if self.has_message_id else f"sha256:{self.sha256}"


_HAN: Final = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+")
_KANA: Final = re.compile(r"[\u3040-\u30ff]+")
_NOT_LETTER: Final = re.compile(r"[\W\d_]+")
_ADDR_SPEC: Final = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w.-]+")
_LOSSY_HEADERS: Final = frozenset({"subject", "from", "to", "cc", "reply-to"})
_LANGUAGE_SAMPLE: Final = 100_000  # characters; the start of a mail tells its language
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NO_ONE: Final = re.compile(r"(?i)\b(?:mailer-daemon|postmaster)\b|<\s*>")  # RFC 5321 4.5.5
_PEEK: Final = 256 * 1024  # bytes of a mail's head that peek_message_id reads
_REACHABLE: Final = frozenset({"localhost", "local"})  # special-use, yet mail gets there

# email-validator's documented way to accept some special-use domain names (its README,
# "Test addresses"); mailticket is its only user in the process.
email_validator.SPECIAL_USE_DOMAIN_NAMES[:] = [
    name for name in email_validator.SPECIAL_USE_DOMAIN_NAMES if name not in _REACHABLE
]


def parse(raw: bytes, *, max_attachment_size: int = DEFAULT_MAX_ATTACHMENT_SIZE) -> InboundMail:
    """Parse one mail; ParseError when the bytes are not a mail at all.

    The email package has known crashes on malformed MIME; any of them becomes a
    ParseError here, so intake sees exactly two outcomes and can quarantine the rest.
    """
    if not raw.strip():
        raise ParseError("empty message")
    try:
        msg = _read(raw)
        tree = mime_tree.tree(msg)
        problem = limits.header_problem(tree)
        if problem:
            raise LimitExceeded(f"limit: {problem}", _own_id(msg) or "")
        return _build(raw, msg, tree, max_attachment_size)
    except MailRejected:
        raise
    except Exception as exc:  # the boundary named above: nothing else may escape
        raise ParseError(f"unreadable mail: {type(exc).__name__}: {exc}") from exc


def _read(raw: bytes) -> Message:
    """The email package's tree of ``raw`` (see ``mime_tree.READ``); its parser recurses
    once per MIME level."""
    try:
        msg = BytesParser(policy=mime_tree.READ).parsebytes(raw)
    except RecursionError:
        raise LimitExceeded(f"limit: {limits.TOO_DEEP}", peek_message_id(raw)) from None
    if not any(name.strip() for name, _ in msg.raw_items()):
        raise ParseError("no header block: not a mail")
    return msg


def peek_message_id(raw: bytes) -> str:
    """The Message-ID of a mail that could not be parsed whole ("" when there is none),
    read from its head alone: for the quarantine row and the log line."""
    try:
        head = BytesHeaderParser(policy=policy.compat32).parsebytes(raw[:_PEEK])
        return _own_id(head) or ""
    except Exception:  # best effort by design: the caller quarantines the mail anyway
        return ""


def _own_id(msg: Message) -> str | None:
    """The mail's own Message-ID, from its first Message-ID header."""
    values = mime_tree.raw_values(msg, "message-id")
    return message_id(charsets.decode_header(values[0]).text) if values else None


def _build(raw: bytes, msg: Message, tree: list[Message], cap: int) -> InboundMail:
    """Assemble the InboundMail from the parsed tree."""
    hint = _charset_hint(tree)
    headers, headers_lossy = _headers(msg, hint)
    own_id = message_id(_first(headers, "message-id"))
    content_type, params = mime_tree.content_type(msg, hint)
    senders = _mailboxes(msg, "from", hint)
    problem = _sender_problem(msg, senders)
    if problem and not _may_come_from_no_one(msg, headers, content_type):
        raise SenderRejected(f"sender: {problem}", own_id or "")
    body = read_body(msg, cap=cap, hint=hint, linesep="\r\n" if b"\r\n" in raw else "\n")
    subject = _first(headers, "subject") or ""
    sha256 = hashlib.sha256(raw).hexdigest()
    report = params.get("report-type")
    return InboundMail(
        raw=raw,
        sha256=sha256,
        message_id=own_id or f"<sha256-{sha256}@mailticket.invalid>",
        has_message_id=own_id is not None,
        from_addr=senders[0][1] if senders else "",
        from_name=senders[0][0] if senders else "",
        to=_addresses(msg, "to", hint),
        cc=_addresses(msg, "cc", hint),
        reply_to=_addresses(msg, "reply-to", hint),
        subject=subject,
        date=_date(_first(headers, "date")),
        in_reply_to=ids(value for name, value in headers if name == "in-reply-to"),
        references=ids(value for name, value in headers if name == "references"),
        headers=headers,
        content_type=content_type,
        report_type=report.text.lower() if report else "",
        text=body.text,
        html=body.html,
        attachments=body.attachments,
        language=language(f"{subject}\n{body.text}"),
        lossy=headers_lossy or body.lossy,
        defects=_defects(tree),
        bounce=read_bounce(msg, content_type, report.text.lower() if report else ""),
        limit_notes=body.notes,
        identity_problems=identity.problems(
            [(name.strip().lower(), str(value)) for name, value in msg.raw_items()],
            lambda value, words: charsets.decode_header(value, hint, words=words).text,
        ),
    )


def _sender_problem(msg: Message, senders: list[tuple[str, str]]) -> str | None:
    """Why the From header gives no single valid author, or None."""
    values = mime_tree.raw_values(msg, "from")
    if not values:
        return "no From header"
    distinct = list(dict.fromkeys(address for _, address in senders))
    if not distinct:
        shown = charsets.decode_header(values[0]).text
        return f"no valid address in From {_CONTROL.sub(' ', shown)[:100]!r}"
    if len(distinct) > 1:
        listed = ", ".join(distinct[:3])
        return f"From names {len(distinct)} mailboxes ({listed}): the requester is ambiguous"
    return None


def _may_come_from_no_one(
    msg: Message, headers: tuple[tuple[str, str], ...], content_type: str
) -> bool:
    """A bounce or an auto-reply: a report (RFC 6522), ``Auto-Submitted`` (RFC 3834), or a
    From naming the null sender or MAILER-DAEMON / postmaster. The guard keeps such mail
    from being answered; without a usable sender it is still read (a bounce about our mail)."""
    if content_type == "multipart/report":
        return True
    submitted = (value.strip().lower() for key, value in headers if key == "auto-submitted")
    if any(value not in ("", "no") for value in submitted):
        return True
    return any(_NO_ONE.search(value) for value in mime_tree.raw_values(msg, "from"))


def _charset_hint(tree: list[Message]) -> str | None:
    """The charset of the mail's raw 8-bit headers, judged on all of them at once, with
    the first non-UTF-8 charset the mail declares (for a part or in an encoded word) as a
    head start."""
    declared = (mime_tree.content_type(part, None)[1].get("charset") for part in tree)
    labels = (found.text for found in declared if found)
    words = (
        name for _, value in tree[0].raw_items() for name in charsets.word_charsets(str(value))
    )
    hint = next((name for name in chain(labels, words) if charsets.is_legacy(name)), None)
    return charsets.header_hint((str(value) for _, value in tree[0].raw_items()), hint)


def _headers(msg: Message, hint: str | None) -> tuple[tuple[tuple[str, str], ...], bool]:
    """Every header decoded, in order; lossy when one a person reads needed replacement."""
    pairs: list[tuple[str, str]] = []
    lossy = False
    for name, value in msg.raw_items():
        key = name.strip().lower()
        decoded = charsets.decode_header(str(value), hint)
        pairs.append((key, _CONTROL.sub(" ", decoded.text)))
        lossy = lossy or (decoded.lossy and key in _LOSSY_HEADERS)
    return tuple(pairs), lossy


def _first(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    """The first decoded value of header ``name``, or None."""
    return next((value for key, value in headers if key == name), None)


def _mailboxes(msg: Message, name: str, hint: str | None) -> list[tuple[str, str]]:
    """(display name, lower-case addr-spec) of each valid address in header ``name``.

    The list is split with encoded words hidden: a decoded display name may hold "," or
    "<x@y>", which must never become an address of its own (From spoofing). Display
    names lose control characters; invalid addresses are left out (see ``sendable_address``).
    """
    raw = ", ".join(
        charsets.decode_header(v, hint, words=False).text for v in mime_tree.raw_values(msg, name)
    )
    hidden, words = charsets.hide_words(raw)
    try:
        pairs = getaddresses([hidden])
    except RecursionError:  # the stdlib recurses once per ":" (group syntax); a hostile list
        pairs = [("", found) for found in _ADDR_SPEC.findall(hidden)]
    found = ((display, sendable_address(addr.strip())) for display, addr in pairs)
    return [
        (
            _CONTROL.sub(
                " ", charsets.decode_header(charsets.show_words(display, words), hint).text
            ),
            addr,
        )
        for display, addr in found
        if addr is not None
    ]


# A quoted local part mailticket writes to: words of characters that need no escape and
# mean nothing to an address list, one space apart ("System Administrator"@example.com).
# No "," (recipients are stored comma-separated), "@", "<>" (an address inside an address
# misleads a reader), quote or backslash; no runs of spaces (header values are made one
# line by collapsing them).
_QUOTED_LOCAL: Final = re.compile(r'"[^\s"\\,;:@<>()\[\]]+(?: [^\s"\\,;:@<>()\[\]]+)*"')


@functools.lru_cache(maxsize=4096)
def sendable_address(address: str) -> str | None:
    """``address`` as mailticket writes to it (lower case, an internationalised domain in
    its ASCII form), or None when it is not valid: email-validator's syntax check (RFC
    5321) without DNS or IP literals. A non-ASCII local part is valid (RFC 6531: mail to
    it goes out with SMTPUTF8, see ``transport``), a quoted local part too when it is
    plain words (``_QUOTED_LOCAL``). Dotless hosts, ``localhost``, ``.local`` and
    ``.test`` pass (cron mail, intranets, test setups); ``.invalid``, ``.onion`` and
    ``.arpa`` never reach anyone."""
    try:
        found = validate_email(
            address,
            allow_smtputf8=True,
            allow_quoted_local=True,
            check_deliverability=False,
            globally_deliverable=False,
            test_environment=True,
        )
    except EmailNotValidError:
        return None
    local = found.local_part
    if local.startswith('"') and not _QUOTED_LOCAL.fullmatch(local):
        return None
    return f"{local}@{found.ascii_domain}".lower()


def _addresses(msg: Message, name: str, hint: str | None) -> tuple[str, ...]:
    """The lower-case addr-specs of header ``name``, in order, without repeats."""
    return tuple(dict.fromkeys(addr for _, addr in _mailboxes(msg, name, hint)))


def _date(value: str | None) -> datetime | None:
    """The Date header as an aware datetime (naive means UTC), None when unparseable."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def language(text: str) -> str:
    """ "zh" when Han characters are a meaningful share of the text, else "en".

    Japanese also uses Han characters; text with more than a little kana is not Chinese
    (its writers are better served by the English templates than the Chinese ones).
    """
    sample = text[:_LANGUAGE_SAMPLE]
    han = sum(map(len, _HAN.findall(sample)))
    if not han or sum(map(len, _KANA.findall(sample))) * 2 > han:
        return "en"
    letters = len(_NOT_LETTER.sub("", sample))
    return "zh" if han >= 5 or han * 10 >= letters else "en"


def _defects(tree: list[Message]) -> tuple[str, ...]:
    """The email package's defect class names found anywhere in the mail, without repeats."""
    return tuple(dict.fromkeys(type(defect).__name__ for part in tree for defect in part.defects))
