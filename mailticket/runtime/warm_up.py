"""Mails the daemon rehearses with before it opens its listener.

A fresh process pays one-off costs on its first mails: templates compiled, SQL
statements compiled and cached, regular expressions compiled, the seed-phrase word
lists read, codecs imported. Measured on the first mails after a start: 50-180 ms
each instead of 5. The daemon pays them up front instead: it parses these mails (in
its own process and in a parser worker) and its store rehearses storing them, in a
transaction that is rolled back (``Intake.rehearse``).

They cover the common paths: a new ticket in English (acknowledgement, agent
notification), one in Chinese (GBK, HTML only, an attachment, an encoded subject:
the Chinese templates), and a reply threaded onto the first.
"""

from __future__ import annotations

import gc
import uuid
from email.message import EmailMessage
from email.policy import SMTP

SENDER = "warm-up@mailticket.example"  # never a real requester (RFC 2606)


def sample_mails(support: str = "support@mailticket.invalid") -> list[bytes]:
    """Fresh Message-IDs each time: a rehearsal never meets a stored mail."""
    token = uuid.uuid4().hex
    first = f"<warm-up-1.{token}@mailticket.invalid>"
    new = _mail(first, support, "Printer on floor 3 is offline", "It shows error 42.\n")
    chinese = _mail(f"<warm-up-2.{token}@mailticket.invalid>", support, "打印机无法连接", None)
    chinese.set_content("<p>您好，打印机无法连接网络。</p>", subtype="html", charset="gbk")
    chinese.add_attachment(
        b"%PDF-1.4\n", maintype="application", subtype="pdf", filename="日志.pdf"
    )
    reply = _mail(
        f"<warm-up-3.{token}@mailticket.invalid>",
        support,
        "Re: Printer on floor 3",
        "Still down.\n",
    )
    reply["In-Reply-To"] = first
    reply["References"] = first
    return [message.as_bytes(policy=SMTP) for message in (new, chinese, reply)]


def _mail(message_id: str, support: str, subject: str, text: str | None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Warm Up <{SENDER}>"
    message["To"] = support
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message["Date"] = "Sun, 22 Nov 2026 09:00:00 +0000"
    if text is not None:
        message.set_content(text)
    return message


def settle_garbage_collector() -> None:
    """Exempt what start-up built (modules, engine, templates: about 10^5 objects) from
    later full collections: each one walked them all, a pause of 50-90 ms in which no
    mail was answered. What is garbage now is collected first."""
    gc.collect()
    gc.freeze()
