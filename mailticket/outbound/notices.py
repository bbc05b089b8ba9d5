"""Render templates into ready-to-send mails (pure, given the jinja2 environment).

A template's first line is ``Subject: ...``, then a blank line, then the body.
``templates/zh/<name>.txt.j2`` is preferred when the requester wrote in Chinese;
an optional ``<name>.html.j2`` makes the mail multipart/alternative.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr, getaddresses
from pathlib import Path
from typing import Any

import jinja2

_PACKAGE = Path(__file__).resolve().parent.parent  # mailticket/
PACKAGED_TEMPLATES = _PACKAGE / "default_templates"  # in a wheel (pyproject's force-include)
SOURCE_TEMPLATES = _PACKAGE.parent / "templates"  # in a checkout


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str | None


@dataclass(frozen=True, slots=True)
class Envelope:
    sender: str
    to: str
    cc: tuple[str, ...]
    message_id: str
    in_reply_to: str | None
    references: tuple[str, ...]
    auto_submitted: str | None  # "auto-replied" for answers to requesters, "auto-generated" else
    date: datetime
    reply_to: str | None = None


def template_dirs(configured: Path) -> list[Path]:
    """The admin's directory first, then the templates mailticket ships with."""
    candidates = [configured, PACKAGED_TEMPLATES, SOURCE_TEMPLATES]
    return [path for path in dict.fromkeys(candidates) if path.is_dir()]


class Renderer:
    def __init__(self, directories: Sequence[Path]) -> None:
        loader = jinja2.FileSystemLoader([str(path) for path in directories])
        self._text = jinja2.Environment(
            loader=loader,
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
        )
        self._html = jinja2.Environment(
            loader=loader, undefined=jinja2.StrictUndefined, autoescape=True
        )

    def compile_all(self) -> None:
        """Compile every template now (the daemon does at start): compiling takes a few
        milliseconds each, which the first mail to use a template would wait for."""
        for environment, kind in ((self._text, ".txt.j2"), (self._html, ".html.j2")):
            for name in environment.list_templates():
                if name.endswith(kind):
                    environment.get_template(name)

    def render(self, name: str, language: str, context: Mapping[str, Any]) -> Rendered:
        """Render ``name`` in ``language`` when a translation exists, else the default."""
        text_template = self._pick(self._text, name, "txt", language)
        if text_template is None:
            raise jinja2.TemplateNotFound(f"{name}.txt.j2")
        subject, body = _split_subject(text_template.render(context), name)
        html_template = self._pick(self._html, name, "html", language)
        html = html_template.render(context) if html_template is not None else None
        return Rendered(subject=subject, text=body, html=html)

    @staticmethod
    def _pick(
        env: jinja2.Environment, name: str, kind: str, language: str
    ) -> jinja2.Template | None:
        for candidate in (f"{language}/{name}.{kind}.j2", f"{name}.{kind}.j2"):
            try:
                return env.get_template(candidate)
            except jinja2.TemplateNotFound:
                continue
        return None


def _split_subject(rendered: str, name: str) -> tuple[str, str]:
    first, _, rest = rendered.partition("\n")
    if not first.lower().startswith("subject:"):
        raise ValueError(f"template {name}: the first line must be 'Subject: ...'")
    return one_line(first[len("subject:") :]), rest.lstrip("\n")


def one_line(text: str) -> str:
    """Header-safe text: no CR/LF or other control characters can reach a header."""
    if not text.isprintable():  # rare: only then look at each character
        text = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(text.split())


def compose(
    rendered: Rendered, envelope: Envelope, attachments: Sequence[tuple[str, str, bytes]] = ()
) -> bytes:
    """The final bytes: every header is ours, none is copied from a requester's input.

    The header block is written here: every value is ours and made one line, so only a
    long or non-ASCII one needs the email package's folding and encoded words (which
    cost more than all the rest of a notification). The body's MIME structure and
    transfer encoding come from the email package's compat32 classes.
    """
    body: Message = _text_part(rendered.text, "plain")
    if rendered.html is not None:
        body = MIMEMultipart("alternative", _subparts=[body, _text_part(rendered.html, "html")])
    if attachments:
        body = MIMEMultipart("mixed", _subparts=[body, *map(_file_part, attachments)])
    head = "".join(
        f"{name}: {_header_value(name, value)}\r\n" for name, value in _headers(rendered, envelope)
    )
    return head.encode("utf-8") + body.as_bytes(policy=_WIRE)  # UTF-8: RFC 6532 addresses


def draft(rendered: Rendered, envelope: Envelope) -> str:
    """What ``compose`` needs, as JSON: the outbox keeps this and composes at delivery,
    outside the transaction that queued the mail (composing is a tenth of intake's)."""
    return json.dumps(
        {
            "subject": rendered.subject,
            "text": rendered.text,
            "html": rendered.html,
            "sender": envelope.sender,
            "to": envelope.to,
            "cc": envelope.cc,
            "message_id": envelope.message_id,
            "in_reply_to": envelope.in_reply_to,
            "references": envelope.references,
            "auto_submitted": envelope.auto_submitted,
            "date": envelope.date.isoformat(),
            "reply_to": envelope.reply_to,
        },
        ensure_ascii=False,
    )


def compose_draft(text: str) -> bytes:
    """``compose`` from a ``draft``."""
    fields = json.loads(text)
    rendered = Rendered(fields["subject"], fields["text"], fields["html"])
    envelope = Envelope(
        sender=fields["sender"],
        to=fields["to"],
        cc=tuple(fields["cc"]),
        message_id=fields["message_id"],
        in_reply_to=fields["in_reply_to"],
        references=tuple(fields["references"]),
        auto_submitted=fields["auto_submitted"],
        date=datetime.fromisoformat(fields["date"]),
        reply_to=fields["reply_to"],
    )
    return compose(rendered, envelope)


def _headers(rendered: Rendered, envelope: Envelope) -> list[tuple[str, str]]:
    headers = [("From", envelope.sender), ("To", envelope.to)]
    if envelope.cc:
        headers.append(("Cc", ", ".join(envelope.cc)))
    if envelope.reply_to:
        headers.append(("Reply-To", envelope.reply_to))
    headers += [
        ("Subject", rendered.subject),
        ("Date", format_datetime(envelope.date)),
        ("Message-ID", envelope.message_id),
    ]
    if envelope.in_reply_to:
        headers.append(("In-Reply-To", envelope.in_reply_to))
    if envelope.references:
        headers.append(("References", " ".join(envelope.references[-20:])))
    if envelope.auto_submitted:
        headers.append(("Auto-Submitted", envelope.auto_submitted))
    # on every mail, relayed human replies too: Exchange and Outlook then send no
    # out-of-office or read receipt back (the loop through two autoresponders)
    headers.append(("X-Auto-Response-Suppress", "All"))
    return headers


_WIRE = compat32.clone(linesep="\r\n")
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP
_QP_LIMIT = 64 * 1024  # characters; quoted-printable is encoded in Python


def _text_part(text: str, subtype: str) -> Message:
    """7bit when ASCII; quoted-printable when mostly ASCII and short; else base64
    (smaller for Chinese text, and encoded in C: a long body costs milliseconds)."""
    if text.isascii():
        return MIMEText(text, subtype, "us-ascii")
    data = text.encode("utf-8", "surrogatepass")
    if len(text) <= _QP_LIMIT and (len(data) - len(text)) * 10 <= len(text):
        return MIMEText(text, subtype, _UTF8_QP)  # type: ignore[arg-type]  # a Charset works
    part = MIMENonMultipart("text", subtype, charset="utf-8")
    part["Content-Transfer-Encoding"] = "base64"
    part.set_payload(base64.encodebytes(data).decode("ascii"))
    return part


def _file_part(attachment: tuple[str, str, bytes]) -> Message:
    """A relayed file: its type as declared (when it is one), its name RFC 2231-encoded."""
    filename, content_type, data = attachment
    maintype, _, subtype = content_type.partition("/")
    if not (maintype.isalpha() and subtype and one_line(subtype) == subtype):
        maintype, subtype = "application", "octet-stream"
    part = MIMENonMultipart(maintype, subtype)
    part["Content-Transfer-Encoding"] = "base64"
    part.set_payload(base64.encodebytes(data).decode("ascii"))
    name = one_line(filename) or "attachment"
    param: str | tuple[str, str, str] = name if name.isascii() else ("utf-8", "", name)
    part.add_header("Content-Disposition", "attachment", filename=param)
    return part


_ADDRESS_HEADERS = frozenset({"From", "To", "Cc", "Reply-To"})


def _header_value(name: str, value: str) -> str:
    """One line as it is when short ASCII; else folded (and encoded words when not ASCII)."""
    clean = one_line(value)
    if name in _ADDRESS_HEADERS and not clean.isascii():  # the address itself stays readable
        pairs = getaddresses([clean])
        if any(not address.isascii() for _, address in pairs):
            return ",\r\n ".join(_utf8_mailbox(display, address) for display, address in pairs)
        clean = ", ".join(formataddr(pair, charset="utf-8") for pair in pairs)
        return Header(clean, "us-ascii", header_name=name).encode(linesep="\r\n")
    plain = clean.isascii() and "=?" not in clean  # else a client would decode it as a word
    if plain and len(name) + len(clean) < 76:
        return clean
    charset = "us-ascii" if plain else "utf-8"
    return Header(clean, charset, header_name=name).encode(linesep="\r\n")


def _utf8_mailbox(display: str, address: str) -> str:
    """A mailbox whose address may be UTF-8 (RFC 6532: such a mail goes out only through a
    relay that offers SMTPUTF8, see ``transport``); the display name is still an encoded
    word, for the ASCII-only readers a Cc may reach."""
    if address.isascii():
        return formataddr((display, address), charset="utf-8")
    if not display:
        return address
    named = formataddr((display, _PLACEHOLDER), charset="utf-8")  # it refuses UTF-8 addresses
    return f"{named.removesuffix(f'<{_PLACEHOLDER}>')}<{address}>"


_PLACEHOLDER = "x@x.invalid"
