"""Is a mail automatic (RFC 3834)? Automatic mail never gets an automatic answer.

Pure: a verdict from the parsed mail and our own addresses.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from mailticket.mail import InboundMail

_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list"})
_LIST_HEADERS = ("list-id", "list-unsubscribe")
_AUTORESPONDER_HEADERS = ("x-autoreply", "x-autorespond")
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
            "delivery status notification" if bounce else None,
            _daemon_sender(mail),
            _own_sender(mail, own_addresses),
        )
        if reason
    ]
    return Verdict(automatic=bool(reasons), reasons=tuple(reasons), is_bounce=bounce)


def _is_dsn(mail: InboundMail) -> bool:
    return mail.content_type == "multipart/report" and mail.report_type == "delivery-status"


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


def _daemon_sender(mail: InboundMail) -> str | None:
    if not mail.from_addr:
        return "no sender address"
    local = mail.from_addr.partition("@")[0]
    return f"sent by {local}" if local in _DAEMON_LOCALPARTS else None


def _own_sender(mail: InboundMail, own_addresses: Collection[str]) -> str | None:
    own = {address.lower() for address in own_addresses}
    return "sent from our own address" if mail.from_addr in own else None
