"""Is a mail automatic (RFC 3834)? Automatic mail never gets an automatic answer.

Pure: a verdict from the parsed mail and our own addresses. A bounce is what
:mod:`mailticket.dsn` read as one (an RFC 3464 report or a plain failure notice); an
out-of-office reply is automatic but no bounce.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

from mailticket.mail import InboundMail

_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list"})
_LIST_HEADERS = ("list-id", "list-unsubscribe")
_AUTORESPONDER_HEADERS = ("x-autoreply", "x-autorespond", "x-ms-exchange-inbox-rules-loop")
_AUTO_REPLY_SUBJECT: Final = re.compile(
    r"^\s*(?:automatic reply|auto[- ]?reply|auto[- ]?response|autorespons|out of (?:the )?office"
    r"|abwesenheitsnotiz|r[ée]ponse automatique|自动回复|自動回覆|自動応答)\s*[:：]",
    re.I,
)  # Exchange, Apple, Gmail and others without RFC 3834 headers
_DAEMON_LOCALPARTS = frozenset({"mailer-daemon", "postmaster"})


@dataclass(frozen=True, slots=True)
class Verdict:
    automatic: bool
    reasons: tuple[str, ...]
    is_bounce: bool


def classify(mail: InboundMail, own_addresses: Collection[str]) -> Verdict:
    """Every reason that makes ``mail`` automatic; none means a human wrote it."""
    bounce = _is_dsn(mail)
    reasons = [
        reason
        for reason in (
            _auto_submitted(mail),
            _precedence(mail),
            _list_mail(mail),
            _autoresponder(mail),
            _auto_reply(mail),
            _null_sender(mail),
            "delivery status notification" if bounce else None,
            _daemon_sender(mail),
            _own_sender(mail, own_addresses),
        )
        if reason
    ]
    return Verdict(automatic=bool(reasons), reasons=tuple(reasons), is_bounce=bounce)


def _is_dsn(mail: InboundMail) -> bool:
    """An RFC 3464 report or a plain failure notice (read by :mod:`mailticket.dsn`)."""
    return mail.bounce is not None


def _auto_submitted(mail: InboundMail) -> str | None:
    for value in mail.header("auto-submitted"):
        token = value.split(";")[0].strip().lower()
        if token and token != "no":
            return f"Auto-Submitted: {token}"
    return None


def _precedence(mail: InboundMail) -> str | None:
    for value in mail.header("precedence"):
        if value.strip().lower() in _BULK_PRECEDENCE:
            return f"Precedence: {value.strip().lower()}"
    return None


def _list_mail(mail: InboundMail) -> str | None:
    found = [name for name in _LIST_HEADERS if mail.header(name)]
    return f"mailing list ({', '.join(found)})" if found else None


def _autoresponder(mail: InboundMail) -> str | None:
    found = [name for name in _AUTORESPONDER_HEADERS if mail.header(name)]
    return f"autoresponder header ({', '.join(found)})" if found else None


def _auto_reply(mail: InboundMail) -> str | None:
    """Auto-replies that carry no RFC 3834 header: by their subject, or Apple's header."""
    if _AUTO_REPLY_SUBJECT.match(mail.subject):
        return "auto-reply subject"
    vacation = any(v.strip().lower() == "vacation" for v in mail.header("x-apple-action"))
    return "X-Apple-Action: vacation" if vacation else None


def _null_sender(mail: InboundMail) -> str | None:
    """``Return-Path: <>``: the null reverse-path of notifications (RFC 5321 4.5.5)."""
    return "null Return-Path" if "<>" in (v.strip() for v in mail.header("return-path")) else None


def _daemon_sender(mail: InboundMail) -> str | None:
    if not mail.from_addr:
        return "no sender address"
    local = mail.from_addr.partition("@")[0]
    return f"sent by {local}" if local in _DAEMON_LOCALPARTS else None


def _own_sender(mail: InboundMail, own_addresses: Collection[str]) -> str | None:
    own = {address.lower() for address in own_addresses}
    return "sent from our own address" if mail.from_addr in own else None
