"""Read a bounce into a :class:`Bounce` (pure): who failed, how, and which mail came back.

Two forms reach us. RFC 3464 reports carry ``message/delivery-status`` fields, read
tolerantly (a broken status part before the good one, blocks the email package could not
split, "Name : value" fields, a broken boundary). Many MTAs send plain notices instead:
qmail, Exim, Exchange, Gmail, Postfix and Sendmail without a status part, Domino, Yahoo.
Those are recognised by the marker tables below (sisimai's lhost modules, as data) and
read from their text. The returned original (a ``message/rfc822`` or
``text/rfc822-headers`` part, or quoted after a marker line) gives the Message-ID that
ties the bounce to the mail we sent.

A notice counts only when a mail system sent it (MAILER-DAEMON, postmaster, no From,
``X-Failed-Recipients``, ``Auto-Submitted``, ``Return-Path: <>``) or titled it as mail
systems do ("Undeliverable:", "Returned mail: ...", :data:`FAILURE_SUBJECT`, which the
guard reads too): a person forwarding a bounce to support is asking for help. Other
reports (read receipts, abuse reports) and out-of-office replies are no bounces.

Mailman's detectors (``flufl.bounce``, Apache-2.0) are the last resort, on a mail that
looks like a notice but whose wording the tables here do not know, and for the failed
addresses of a notice whose own text names none (after the senders are left out). They
run on that narrow set only: they are slower, and one of them takes any ", user@host,"
in a text for a failed address.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses
from typing import Final

from flufl.bounce import all_failures

from mailticket.parse import charsets, mime_tree
from mailticket.parse.message_ids import message_id

_DSN: Final = mime_tree.DELIVERY_STATUS
_RETURNED: Final = frozenset(
    {"message/rfc822", "message/global", "text/rfc822-headers", "message/rfc822-headers"}
)
_DAEMON: Final = re.compile(
    r"mailer-?daemon|mail-?daemon|postmaster|post_master|mail\.?delivery\.?system"
    r"|microsoftexchange[0-9a-f]*|mdaemon|mmsc|sysadmin",
    re.I,
)  # local parts of mail systems' own addresses
# A mail system's display name, on whatever address (read by the guard too).
DAEMON_NAME: Final = re.compile(
    r"\s*(?:mail delivery (?:subsystem|system|service)|mailer[- _]?daemon|postmaster|系统退信)\s*$",
    re.I,
)
_NDR_HEADERS: Final = ("x-failed-recipients", "x-ms-exchange-message-is-ndr")
# Subjects and opening lines of failure notices (after sisimai's lhost "startingof").
_SUBJECTS: Final = re.compile(
    r"undeliver|returned mail|returning message|failure notice|delivery status notification"
    r"|delivery fail|failed delivery|failure delivery|non[- ]?deliver|mail system error"
    r"|message delivery has failed|could not send (?:message|mail)|could not be delivered"
    r"|delayed mail|delivery (?:notification|delayed|has failed)|mail (?:delivery )?fail"
    r"|error sending your mail|delivery report|warning: message \S+ delayed|bounce notification",
    re.I,
)
# A mail system's subject, anchored (no reply or forward prefix before it): a notice from
# an ordinary address (a gateway, a relay named as a person) says what it is here. Read by
# the guard too, which calls such mail automatic whatever its body.
FAILURE_SUBJECT: Final = re.compile(
    r"\s*(?:undeliver(?:able|ed)(?:\s+(?:mail|message))?\s*[:：]"
    r"|undelivered mail returned to sender|failure notice\s*$"
    r"|delivery status notification\s*(?:\((?:failure|delay|delayed|success)\)|$)"
    r"|mail delivery failed\s*[:：]\s*returning message to sender"
    r"|returned mail\s*(?:[:：]|[-–—]\s*(?:error|see transcript|delivery))"
    r"|mail system error\s*-\s*returned mail"
    r"|delivery notification\s*:\s*delivery has failed|message status\s*-\s*undeliverable"
    r"|(?:non remis|non distribuable|unzustellbar|nicht zustellbar|non recapitabile"
    r"|no se puede entregar|onbestelbaar|olevererbart|kan ikke leveres|n[ãa]o entregue"
    r"|nie mo[żz]na dostarczy[ćc]|无法投递|無法傳遞|配信不能)\s*[:：]"
    r"|系统退信|退信通知|メールエラー通知\s*$)",
    re.I,
)  # Postfix, Exim, Sendmail, qmail, Exchange (in its languages), Gmail, GroupWise, NetEase
DOMINO_SUBJECT: Final = re.compile(r"\s*DELIVERY FAILURE\s*:")  # capitals: Lotus Domino
_NOTICES: Final = re.compile(
    r"this is the qmail-send program"  # qmail
    r"|created automatically by mail delivery software"  # Exim, GMX, 1&1, MXLogic
    r"|delivery has failed to these recipients"  # Exchange 2007+, Office 365
    r"|did not reach (?:the following recipient|some or all of the intended)"  # Exchange 2003
    r"|delivery to the following recipients? (?:failed|has been delayed)"  # Gmail, Groups
    r"|your message wasn't delivered|address not found"  # Gmail
    r"|the original message was received at|transcript of session follows"  # Sendmail
    r"|following addresses had permanent fatal errors"  # Sendmail
    r"|this is the mail system at host|i'm sorry to have to inform you"  # Postfix
    r"|there was an error delivering your mail"  # DragonFly
    r"|was not delivered to|failure reasons"  # Domino, Notes
    r"|unable to deliver (?:your )?message|could not be delivered"  # Yahoo, X2, KDDI
    r"|message (?:wasn't|was not|couldn't be|cannot be) delivered|permanent error"
    r"|this is (?:the mail delivery agent|a delivery status notification)"
    r"|user unknown|unknown user|no such user|invalid (?:user|recipient) address"
    r"|could not deliver|delivery failure|undeliverable",
    re.I,
)
_DELAYED: Final = re.compile(
    r"\(delay\)|delayed|warning|still being retried|has not yet been delivered"
    r"|will (?:continue to|keep trying|retry)|temporar(?:y|ily) (?:failure|problem)",
    re.I,
)
_EXPIRED: Final = re.compile(
    r"retry timeout exceeded|in the queue too long|failing for a long time"
    r"|(?:delivery time|message) expired|(?:cannot|could not) (?:send (?:message|mail)|deliver"
    r"|be delivered) for (?:the )?(?:last |past )?\d+",
    re.I,
)  # a failure after temporary errors: the queue gave up, the address may still work
# Where a notice quotes the returned original.
_ORIGINAL: Final = re.compile(
    r"^[ \t>-]*(?:below (?:this|the next) line is a copy|this is a copy of (?:the|your)"
    r"|original message|unsent message|message headers follow|returned message|enclosed is"
    r"|the header of the original|original mail|content-type: message/rfc822"
    r"|(?:your|the|received) (?:original )?message (?:headers? )?(?:follows|is attached)"
    r"|message text follows|mensaje original|bounced e-?mail)",
    re.I | re.M,
)
_HEADER_START: Final = re.compile(
    r"^(?:return-path|received|dkim-signature|message-id):", re.I | re.M
)
_ATOM: Final = r"[\w.!#$%&'*+/=?^`{|}~-]"
_ADDR: Final = rf"(?<!{_ATOM}){_ATOM}+@[\w-]+(?:\.[\w-]+)+"  # starts a run: linear time
_ADDRESS: Final = re.compile(_ADDR)
_LEADING: Final = re.compile(
    rf"(?im)^[ \t]*(?:(?:original-)?recipient:[ \t]*)?<?(?:mailto:)?({_ADDR})"
)
_BRACKETED: Final = re.compile(rf"<({_ADDR})>")
_SENDER_LINE: Final = re.compile(
    rf"(?im)^[ \t>]*(?:mail[ \t]+)?(?:from|sender|return-path|reply-to):[^@\n]*?({_ADDR})"
)
_RECIPIENT_LINE: Final = re.compile(r"(?im)^(?:to|cc):(.*(?:\n[ \t].*)*)")
_MESSAGE_ID_LINE: Final = re.compile(r"(?im)^[ \t>]*message-id:[ \t]*(?:\r?\n[ \t]+)?(<[^<>\s]+>)")
_STATUS: Final = re.compile(r"(?<![\w.])#?([45])\.(\d{1,3})\.(\d{1,3})(?!\.?\d)")
_REPLY_CODE: Final = re.compile(r"(?im)(?:^|said:|<<<|smtp;|error:)[ \t#]*([45])[0-5]\d(?=[ -]|$)")
_FIELD: Final = re.compile(rb"^([A-Za-z][\w-]*)[ \t]*:[ \t]*(.*(?:\r?\n[ \t]+.*)*)", re.M)
_BLANK_LINE: Final = re.compile(rb"(?:\r?\n){2,}")
_TAG: Final = re.compile(r"<[^<>]*>")
_HEAD: Final = 20_000  # characters of a notice, or of a returned mail, that are read


@dataclass(frozen=True, slots=True)
class Bounce:
    """What a bounce reports about the mail it returns.

    ``recipients`` are those whose delivery failed (in a report of delays only, those
    delayed). Only a :attr:`permanent` bounce makes them undeliverable: a delayed report,
    or a failure with a 4.x.x status (mailbox full, the queue gave up), says the address
    may work tomorrow, and must not block it.
    """

    original_message_id: str | None
    recipients: tuple[str, ...]
    action: str  # "failed", "delayed", "delivered", ... ("" when the report names none)
    status: str  # "5.1.1", ...; "5.0.0" or "4.0.0" for a notice without a code

    @property
    def permanent(self) -> bool:
        """A failure that retrying will not fix: the only kind that blocks the recipients."""
        return self.action in ("failed", "") and self.status.startswith("5")


@dataclass(frozen=True, slots=True)
class _ReportParts:
    """A bounce taken apart: status blocks, its own text, the mail it returns."""

    blocks: list[dict[str, str]]
    notice: str
    quoted: str  # the returned original's text (its headers at least)
    original: Message | None  # the returned original, when attached as a message


def read_bounce(msg: Message, content_type: str, report_type: str) -> Bounce | None:
    """The bounce ``msg`` is, or None. ``content_type``/``report_type``: the mail's, lower-case."""
    is_report = (content_type, report_type) == ("multipart/report", "delivery-status")
    has_status = any(kind == _DSN for _, kind in _walk(msg))
    structured = is_report or has_status
    if not structured and report_type:
        return None  # another report: a read receipt, an abuse report
    automatic, titled = _automatic_sender(msg), _titled(msg)
    if not (structured or automatic or titled or content_type == "multipart/report"):
        return None  # the common case: decided without decoding text
    parts = _take_apart(msg)
    if structured or (automatic and _is_notice(msg, parts.notice)):
        return _bounce(msg, parts)
    if titled:  # from an ordinary address: only when it names who failed or what came back
        bounce = _bounce(msg, parts)
        return bounce if bounce.recipients or bounce.original_message_id else None
    return _unknown_notice(msg, parts)


def _unknown_notice(msg: Message, parts: _ReportParts) -> Bounce | None:
    """A mail system's mail in words the tables do not know: a bounce when Mailman's
    detectors find failed addresses in it. An autoresponder's (RFC 3834) is none."""
    auto = (v.split(";")[0].strip().lower() for v in _header(msg, "auto-submitted"))
    if "auto-replied" in auto:
        return None
    failed, delayed = _detected(msg, parts)
    if not failed and not delayed:
        return None
    action = "failed" if failed else "delayed"
    status = _status(msg, parts.notice) or ("5.0.0" if failed else "4.0.0")
    return Bounce(_original_id(msg, parts), failed or delayed, action, status)


def _detected(msg: Message, parts: _ReportParts) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The permanent and the temporary failures Mailman's detectors find, as addresses, the
    returned mail's senders left out. Only on a mail with a From (one detector needs it)."""
    if not any(address for _, address in getaddresses(_header(msg, "from"))):
        return (), ()
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # a third party's heuristics (it logs the error): a bounce missed,
        return (), ()  # never a mail lost
    senders = _senders(msg, parts)

    def kept(found: frozenset[bytes]) -> tuple[str, ...]:
        texts = (a.decode("ascii", "replace").strip().strip("<>").lower() for a in found)
        return tuple(sorted({a for a in texts if _ADDRESS.fullmatch(a)} - senders))

    return kept(permanent), kept(temporary)


def _bounce(msg: Message, parts: _ReportParts) -> Bounce:
    """The status fields first (inline ones too), the notice's wording for what they lack.

    When some recipients failed and others are only delayed, the failed ones are reported.
    """
    blocks = parts.blocks or _text_blocks(charsets.to_bytes(parts.notice))
    reported = [b for b in blocks if b.keys() & {"final-recipient", "action", "status"}]
    chosen = [b for b in reported if b.get("action", "").lower() == "failed"] or reported
    recipients = _recipients(chosen)
    action = chosen[0].get("action", "").strip().lower() if chosen else ""
    status = (chosen[0].get("status", "").split() or [""])[0] if chosen else ""
    if not chosen:
        action = "delayed" if _delayed(msg, parts.notice) else "failed"
    if not status and action in ("failed", "delayed", ""):
        status = _status(msg, parts.notice) or ("4.0.0" if action == "delayed" else "5.0.0")
    recipients = recipients or _named_recipients(msg, parts)
    if not recipients:
        failed, delayed = _detected(msg, parts)
        recipients = failed or delayed
    return Bounce(_original_id(msg, parts), recipients, action, status)


def _take_apart(msg: Message) -> _ReportParts:
    """Status blocks, notice text and returned original; returned mails are not entered."""
    blocks: list[dict[str, str]] = []
    plain: list[str] = []
    rich: list[str] = []
    quoted = ""
    original: Message | None = None
    for part, kind in _walk(msg):
        inner = mime_tree.children(part)
        if kind == _DSN:
            blocks += _status_blocks(part)
        elif kind in _RETURNED:
            original = original or (inner[0] if inner else None)
            quoted = quoted or (_head_text(inner[0]) if inner else _text(part))
        elif kind == "text/html":
            rich.append(html.unescape(_TAG.sub(" ", _text(part))))
        elif kind == "text/plain" or (kind.startswith("multipart/") and inner is None):
            plain.append(_text(part))  # a multipart whose boundary is broken is one text
    notice = "\n".join(plain or rich)
    if not quoted and original is None:
        notice, quoted = _split_quoted(notice)
    return _ReportParts(blocks, notice, quoted, original)


def _split_quoted(text: str) -> tuple[str, str]:
    """A notice's own text, and the original it quotes after a marker or a header block."""
    found = _ORIGINAL.search(text) or _HEADER_START.search(text)
    return (text[: found.start()], text[found.start() :]) if found else (text, "")


def _walk(msg: Message) -> Iterator[tuple[Message, str]]:
    """Every part with its type, parents first, not entering returned (message/*) mails."""
    stack = [msg]
    while stack:
        part = stack.pop()
        kind = mime_tree.content_type(part, None)[0]
        yield part, kind
        if part is msg or not kind.startswith("message/"):
            stack.extend(reversed(mime_tree.children(part) or []))


def _text(part: Message) -> str:
    """A leaf's decoded text (its charset, else a guess), up to ``_HEAD`` characters."""
    charset = mime_tree.content_type(part, None)[1].get("charset")
    data = mime_tree.payload_bytes(part)
    return charsets.decode_body(data, charset.text if charset else None).text[:_HEAD]


def _head_text(message: Message) -> str:
    """A returned mail's headers as text, and the start of its text when it is a leaf
    (some MTAs put a blank line before the headers, which then parse as the body)."""
    head = "".join(
        f"{name}: {charsets.unfold(str(value))}\n" for name, value in message.raw_items()
    )
    return head + ("" if message.is_multipart() else "\n" + _text(message))


def _automatic_sender(msg: Message) -> bool:
    """Sent by a mail system rather than a person: by its address or display name, its
    headers, or the null or a mail system's Return-Path (the topmost only: the delivering
    MTA's; any below it are the sender's)."""
    mailboxes = getaddresses(_header(msg, "from"))
    senders = [address for _, address in mailboxes if address]
    auto = [v for v in _header(msg, "auto-submitted") if v.split(";")[0].strip().lower() != "no"]
    return_path = [value.strip().strip("<>").strip() for value in _header(msg, "return-path")[:1]]
    return bool(
        not senders
        or any(_is_daemon(address) for address in senders + [a for a in return_path if a])
        or any(DAEMON_NAME.match(name) for name, _ in mailboxes if name)
        or any(_header(msg, name) for name in _NDR_HEADERS)
        or auto
        or "" in return_path
    )


def _is_daemon(address: str) -> bool:
    return bool(_DAEMON.fullmatch(address.partition("@")[0].strip("<>")))


def _titled(msg: Message) -> bool:
    """A mail system's subject, as :data:`FAILURE_SUBJECT` or Domino's reads it."""
    subject = _subject(msg)
    return bool(FAILURE_SUBJECT.match(subject) or DOMINO_SUBJECT.match(subject))


def _is_notice(msg: Message, notice: str) -> bool:
    """A failure notice by its subject or its wording."""
    return bool(_SUBJECTS.search(_subject(msg)) or _NOTICES.search(notice))


def _delayed(msg: Message, notice: str) -> bool:
    """A notice that the mail is only late: the MTA keeps trying."""
    return bool(_DELAYED.search(_subject(msg)) or _DELAYED.search(notice))


def _status(msg: Message, notice: str) -> str | None:
    """4.4.7 when the queue gave up, else the notice's first enhanced status code, else the
    class of its first SMTP reply code."""
    if _EXPIRED.search(_subject(msg)) or _EXPIRED.search(notice):
        return "4.4.7"
    found = _STATUS.search(notice)
    if found:
        return ".".join(found.groups())
    code = _REPLY_CODE.search(notice)
    return f"{code[1]}.0.0" if code else None


def _named_recipients(msg: Message, parts: _ReportParts) -> tuple[str, ...]:
    """The failed recipients of a notice: ``X-Failed-Recipients`` (Exim, Gmail), else those
    it names (leading a line, else in brackets, else anywhere), else the returned mail's
    only recipient. Whoever sent the returned mail is never one of them."""
    senders = _senders(msg, parts)
    failed = [a for v in _header(msg, "x-failed-recipients") for a in _ADDRESS.findall(v)]
    for found in (failed, _LEADING.findall(parts.notice), _BRACKETED.findall(parts.notice)):
        kept = [address.lower() for address in found if address.lower() not in senders]
        if kept:
            return tuple(dict.fromkeys(kept))
    anywhere = [a.lower() for a in _ADDRESS.findall(parts.notice)]
    kept = [a for a in anywhere if a not in senders and not _is_daemon(a)]
    if kept:  # not "please contact postmaster@..."
        return tuple(dict.fromkeys(kept))
    sent_to = {a.lower() for v in _sent_to(parts) for a in _ADDRESS.findall(v)} - senders
    return tuple(sent_to) if len(sent_to) == 1 else ()


def _senders(msg: Message, parts: _ReportParts) -> frozenset[str]:
    """Whoever sent the returned mail (the bounce's To, the original's From...)."""
    values = [*_header(msg, "to"), *_header(msg, "cc")]
    values += _SENDER_LINE.findall(parts.quoted) + _SENDER_LINE.findall(parts.notice)
    return frozenset(a.lower() for value in values for a in _ADDRESS.findall(value))


def _sent_to(parts: _ReportParts) -> list[str]:
    """The To and Cc values of the returned mail."""
    if parts.original is not None:
        return [str(v) for name in ("to", "cc") for v in mime_tree.raw_values(parts.original, name)]
    return _RECIPIENT_LINE.findall(parts.quoted)


def _original_id(msg: Message, parts: _ReportParts) -> str | None:
    """The returned mail's Message-ID: its header, else a Message-ID line in the text, else
    the bounce's In-Reply-To (Exchange and Verizon set it)."""
    if parts.original is not None and (found := mime_tree.raw_values(parts.original, "message-id")):
        return message_id(charsets.unfold(found[0]))
    replied = (f"Message-ID: {value}" for value in _header(msg, "in-reply-to"))
    lines = (_MESSAGE_ID_LINE.search(text) for text in (parts.quoted, parts.notice, *replied))
    return next((line[1] for line in lines if line), None)


def _header(msg: Message, name: str) -> list[str]:
    """The decoded values of header ``name``."""
    return [charsets.decode_header(value).text for value in mime_tree.raw_values(msg, name)]


def _subject(msg: Message) -> str:
    return " ".join(_header(msg, "subject"))


def _status_blocks(part: Message) -> list[dict[str, str]]:
    """The field blocks of a message/delivery-status part."""
    blocks = mime_tree.children(part)  # the parser splits the blocks, unless an encoding stopped it
    if blocks is None:
        return _text_blocks(mime_tree.payload_bytes(part))
    return _text_blocks(b"\n\n".join(mime_tree.flatten(block, "\n") for block in blocks))


def _text_blocks(data: bytes) -> list[dict[str, str]]:
    """The fields of each paragraph by lower-case name (the first of each name wins).

    Read here rather than by the email package, which drops "Name : value" fields
    (Mimecast writes them so).
    """
    blocks: list[dict[str, str]] = []
    for chunk in _BLANK_LINE.split(data):
        fields: dict[str, str] = {}
        for match in _FIELD.finditer(chunk):
            value = charsets.unfold(match[2].decode("utf-8", "replace"))
            fields.setdefault(match[1].decode("ascii").lower(), value)
        blocks.append(fields)
    return blocks


def _recipients(blocks: list[dict[str, str]]) -> tuple[str, ...]:
    """The failed address of every block, lower-case: its Original-Recipient when that is
    an address (as the sender wrote it: ours, before aliases and forwarding; Mailman reads
    it so), else its Final-Recipient."""
    found = (_original(block) or _field_address(block, "final-recipient") for block in blocks)
    return tuple(dict.fromkeys(address for address in found if address))


def _original(block: dict[str, str]) -> str:
    address = _field_address(block, "original-recipient")
    return address if "@" in address else ""


def _field_address(block: dict[str, str], name: str) -> str:
    """The address of a recipient field (``rfc822; user@host``), lower-case; a source route
    ``@relay:user@host`` gives ``user@host``; "" when there is none."""
    address = block.get(name, "").split(";", 1)[-1].strip().strip("<>").lower()
    address = address.rpartition(":")[2] if address.startswith("@") else address
    return "" if address.startswith("@") else address
