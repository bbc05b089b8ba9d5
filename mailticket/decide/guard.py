"""Is a mail automatic (RFC 3834)? Automatic mail is stored, never answered, never relayed.

Pure: a verdict from the parsed mail and our own addresses, with every reason found (the
ticket's notes and ``explain`` show them). The evidence, in the order it is read:

- headers that automatic senders write: RFC 3834 ``Auto-Submitted``, ``Precedence``, list
  headers (RFC 2369, 2919), and the autoresponders' own (the table below, gathered from
  Discourse, osTicket, RT, sisimai, Zammad and the multi_mail list of autoresponders),
  Exchange's inbox-rule stamp only beside the mark it writes on its auto-replies (it
  stamps forwarded and redirected mail too);
- a report (``multipart/report``, RFC 6522): a delivery status, a read receipt, an abuse
  or DMARC report;
- who sent it: the null or MAILER-DAEMON Return-Path, MAILER-DAEMON or postmaster, a mail
  system's display name ("Mail Delivery Subsystem"), our own address, a list server's own
  address (``help-admin@``, ``owner-help@``) on a mail with list headers;
- what it says where autoresponders and mail systems say it: the start of the subject
  ("Automatic reply:", "Undeliverable:", "自动回复：") and the first lines of the body
  ("This is the mail system at host ...", or "I am out of the office ... upon my return").
  After a reply prefix ("RE:", "AW:", "回复：") a subject marker counts only when the body
  says so too: a person may answer an auto-reply. A person's own words never match: the
  markers are anchored, and a body counts only when its opening is the text of a mail
  system, or an absence *and* an autoresponder's promise ("I will reply upon my return").

Left out on purpose: ``X-Auto-Response-Suppress`` asks the receiver not to answer; Outlook
and Exchange write it on people's mail, as mailticket does on relayed replies (Discourse
#21367, osTicket #5320 and sisimai #491 dropped it for that). ``Feedback-ID``, ``no-reply@``
senders and ``X-Yahoo-Newman-Property`` mark bulk platforms, web forms and webmail, which
also carry people's words.

A bounce is what :mod:`mailticket.parse.dsn` read as one (an RFC 3464 report or a plain failure
notice); an out-of-office reply is automatic but no bounce.
"""

from __future__ import annotations

import html
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Final

from mailticket.parse.dsn import DAEMON_NAME, DOMINO_SUBJECT, FAILURE_SUBJECT
from mailticket.parse.mail import InboundMail

_BULK_PRECEDENCE: Final = frozenset({"bulk", "junk", "list"})
_PRECEDENCE: Final = ("precedence", "x-precedence")
_LIST_HEADERS: Final = (
    *("list-id", "list-unsubscribe", "list-post", "list-help", "list-subscribe", "list-owner"),
    *("list-archive", "mailing-list", "x-mailing-list", "x-ml-name", "x-mlserver"),
)  # RFC 2369, 2919; ezmlm, fml, older list servers
_NO: Final = frozenset({"", "no", "false", "0", "none"})
# A list server's own address (fml, Majordomo, ezmlm, Mailman): its notices ("you are not
# a member", a loop alert, a bounce) carry list headers but no request.
_LIST_SERVER: Final = re.compile(r"(?:owner-.+|.+-(?:admin|owner|bounces|request|ctl))$")
_DAEMON_LOCALPART: Final = re.compile(r"(?:mailer[-_]?daemon|mail[-_]daemon|post[-_]?master)$")
_DAEMON_RETURN_PATH: Final = re.compile(r"\s*<?\s*mailer[-_]?daemon\s*(?:@|>|$)", re.I)
_OPENING: Final = 500  # characters of the body that are read
_OPENING_LINES: Final = 12
_HTML_HEAD: Final = 50_000  # characters of an HTML-only body searched for its <body>
_HTML_OPENING: Final = 4000  # characters from there that are untagged


@dataclass(frozen=True, slots=True)
class Verdict:
    automatic: bool
    reasons: tuple[str, ...]
    is_bounce: bool


@dataclass(frozen=True, slots=True)
class _Sign:
    """A header an automatic sender writes; ``value`` None: any value but an explicit no."""

    header: str
    value: re.Pattern[str] | None
    label: str


_AUTORESPONDER: Final = "autoresponder header"
# Exchange stamps the first on whatever an inbox rule sends, a person's mail it forwards or
# redirects included; with the second (which it writes on its auto-replies) it is an
# auto-reply, as Zammad reads it.
_INBOX_RULE: Final = ("x-ms-exchange-inbox-rules-loop", "x-auto-response-suppress")
_MACHINE: Final = "machine-generated header"
_AUTO_REPLY_VALUE: Final = re.compile(r"auto[_-]?reply$")
_SIGNS: Final = (
    _Sign("x-autoreply", None, _AUTORESPONDER),  # Gmail ("yes"), Yahoo, many hosts
    _Sign("x-autorespond", None, _AUTORESPONDER),  # cPanel, BoxTrapper
    _Sign("x-autoresponse", None, _AUTORESPONDER),
    _Sign("x-autoreply-from", None, _AUTORESPONDER),  # Domain Technologie Control
    _Sign("x-mail-autoreply", None, _AUTORESPONDER),  # Domain Technologie Control
    _Sign("x-amazon-auto-reply", None, _AUTORESPONDER),
    _Sign("x-apple-action", re.compile("vacation"), _AUTORESPONDER),
    _Sign("precedence", _AUTO_REPLY_VALUE, _AUTORESPONDER),
    _Sign("x-precedence", _AUTO_REPLY_VALUE, _AUTORESPONDER),  # cPanel
    _Sign("preference", _AUTO_REPLY_VALUE, _AUTORESPONDER),  # cPanel's misspelling
    # CommuniGate Pro; its Forward, Redirect, Mirror and Group carry a person's mail
    _Sign("x-autogenerated", re.compile(r"reply\b"), _AUTORESPONDER),
    _Sign("x-post-messageclass", re.compile(r"\d+\s*;\s*autoresponder"), _AUTORESPONDER),
    _Sign("delivered-to", re.compile(r"autoresponder$"), _AUTORESPONDER),  # qmail
    _Sign(
        "x-mailer",
        re.compile(r".*\b(?:auto[- ]?respon|auto[- ]?reply|vacation\b|kana response)"),
        _AUTORESPONDER,
    ),
    _Sign("x-fc-machinegenerated", re.compile("true"), _MACHINE),  # FirstClass (after RT)
    _Sign("x-amz-sns-message-id", None, _MACHINE),  # an Amazon SNS notification
)
_READ: Final = frozenset(
    {*(sign.header for sign in _SIGNS), *_LIST_HEADERS, *_PRECEDENCE}
    | {"auto-submitted", "x-loop", "return-path", *_INBOX_RULE}
)  # the headers classify reads

# Reply prefixes an autoresponder's subject may sit under: English, German, Nordic,
# Dutch, Italian, Portuguese, Polish, Turkish, Chinese, Japanese; "Re[2]:", "Re^2:".
_REPLY_PREFIX: Final = re.compile(
    r"\s*(?:(?:re|aw|sv|vs|antw|antwort|rif|r|res|odp|ynt|回复|回覆|答复|答覆|返信)"
    r"\s*(?:(?:\[\d+\]|\(\d+\)|\^\d+)\s*)?[:：]\s*)+",
    re.I,
)
_END: Final = r"\s*(?:[:：]|$)"  # a marker ends the subject or is followed by a colon
_AUTO_REPLY_SUBJECT: Final = re.compile(
    r"\s*(?:\[[^\]\n]{1,80}\]\s*)?"  # a ticket or list tag first, as RT's "[q #12] AutoReply:"
    r"(?:auto(?:matic)?[- ]?(?:reply|respon(?:se|der)|answer)"
    rf"(?:{_END}|\s+(?=(?:re|aw|fw|fwd|sv|回复)\s*[:：]))"
    rf"|out of (?:the )?office(?:\s+(?:auto[- ]?reply|reply|alert|notice|notification))?{_END}"
    r"|auto\s*:.*(?:\bis out of the office|\bist au(?:ß|ss)er haus|\best absente?|\(returning\b)"
    r"|(?:autosvar|automatisk svar|automatisch antwoord|automatische antwort"
    r"|abwesenheitsnotiz|risposta automatica|risposta non al computer|fuori sede"
    r"|respuesta autom[aá]tica|fuera de (?:la )?oficina|r[ée]ponse automatique"
    r"|absence du bureau|fr[åa]nvaro|frav[æa]rende|ikke p[åa] kontoret|poza biurem"
    r"|odpowied[źz] automatyczna|automaattinen vastaus|automatick[áa] odpov[ěe][ďd]"
    r"|resposta autom[áa]tica|automatikus v[áa]lasz|otomatik yan[ıi]t|автоматический ответ"
    rf"|自动回复|自动答复|自动应答|自動回覆|自動回复|自動答覆|自動応答|自動返信|休假中|不在通知){_END}"
    r"|[【\[](?:自动回复|自動回覆|自动答复|休假|auto[- ]?reply|automatic reply|out of office)[】\]])",
    re.I,
)  # Exchange/Outlook in many languages, Lotus Notes, Gmail, QQ Mail, NetEase, Apple, RT
_LOTUS_SUBJECT: Final = re.compile(r"\s*AUTO\s*:")  # capitals only: "Auto:" may be a car
_REPORT_SUBJECT: Final = re.compile(
    r"\s*complaint about message from \d{1,3}(?:\.\d{1,3}){3}\b", re.I
)  # Hotmail's JMRP feedback

# A body's opening: the lines before any quoted history.
_HISTORY: Final = re.compile(
    r"\s*(?:>|-{2,}|_{5,}|(?:from|von|de|da|van|发件人|發件人|寄件者|差出人)\s*[:：]"
    r"|on\s.{0,200}\swrote\s*:|.{0,200}(?:写道|寫道)\s*[:：]|am\s.{0,200}\sschrieb)",
    re.I,
)
_TAG: Final = re.compile(r"<[^>]*>")
# The first line of a failure notice (after sisimai's lhost modules; Exchange's in the
# languages it writes).
_FAILURE_TEXT: Final = re.compile(
    r"\s*(?:this is the mail system at host|this message was created automatically by mail"
    r" delivery software|hi\. this is the qmail-send program|the original message was"
    r" received at \w{3}, \d{1,2} \w{3} \d{4}"
    r"|your message did not reach some or all of the intended recipients"
    r"|your message to \S+@\S+ couldn['’]t be delivered|your message wasn['’]t delivered to \S+@"
    r"|delivery has failed to these recipients or groups|this is an automatically generated"
    r" delivery status notification|i'm sorry to have to inform you that your message"
    r"|(?:votre|le) message n['’]a pas pu être remis|remise à ces destinataires ou groupes"
    r" impossible|votre message n['’]a pas atteint certains ou la totalité de ses destinataires"
    r"|ihre nachricht hat einige oder alle empfänger nicht erreicht|übermittlung an folgende"
    r" empfänger oder gruppen fehlgeschlagen|error al entregar a estos destinatarios"
    r"|il messaggio non (?:è|e') stato recapitato|recapito non riuscito a questi destinatari"
    r"|(?:传递|投递)到这些收件人或(?:组|通讯组)失败|無法傳遞到這些收件者或群組"
    r"|(?:很)?抱歉[，,]?\s*您(?:发送|寄出)的邮件(?:无法|未能|没有)(?:成功)?(?:送达|投递|发送)"
    r"|此(?:邮件|信)(?:是|为)系统(?:自动)?退信)",
    re.I,
)
_CLAUSE: Final = r"(?:^|[.!?。！？,，:：;；]\s*)\W{0,3}"  # where a statement may start
_ABSENT: Final = re.compile(
    _CLAUSE + r"(?:(?:i am|i'm|i will be|i'll be)\s+(?:currently\s+|now\s+)?(?:out of"
    r" (?:the )?office|away from (?:the|my) (?:office|desk)|on (?:\w+ )?(?:leave|vacation"
    r"|holiday)|travell?ing|on a business trip)"
    r"|ich bin (?:derzeit |zurzeit |momentan |bis [^\n]{1,30}? )?(?:nicht im büro|abwesend"
    r"|au(?:ß|ss)er haus|im urlaub|nicht erreichbar)"
    r"|je suis (?:actuellement )?(?:absente?|en (?:congés?|vacances|déplacement)"
    r"|hors du bureau)"
    r"|(?:estoy|me encuentro) (?:actualmente )?(?:fuera de la oficina|de vacaciones|ausente)"
    r"|sono (?:attualmente )?(?:fuori (?:ufficio|sede)|in ferie|assente)"
    r"|ik ben (?:momenteel |tot [^\n]{1,30}? )?(?:afwezig|niet op kantoor|met vakantie)"
    r"|(?:我|本人)(?:现在|目前|正在|已经|将)?(?:不在办公室|休假|在休假|出差|外出|请假)"
    r"|(?:目前|现在)(?:正在)?休假|休假中)",
    re.I | re.M,
)
_PROMISE: Final = re.compile(
    r"(?:respond|reply|answer|read|get back)[^.\n]{0,50}(?:(?:upon|on|after) my return"
    r"|when i (?:return|am back|get back))"
    r"|(?:limited|intermittent|restricted|no) access to (?:my )?e-?mail"
    r"|for (?:urgent|pressing|immediate) (?:\w+ )?(?:matters|issues|requests|enquiries"
    r"|inquiries|assistance|questions)|in case of urgency|if (?:this|your \w+) is urgent"
    r"|will (?:respond|reply|answer) to your (?:e-?mail|message|mail|enquiry|inquiry)"
    r"|nach meiner rückkehr|in dringenden fällen|(?:dès|à) mon retour|en cas d'urgence"
    r"|a mi regreso|en caso de urgencia|al mio rientro|in caso di urgenza"
    r"|na mijn terugkeer|voor dringende zaken"
    r"|(?:回来|返回|返岗|上班)(?:后|之后)[^。！\n]{0,12}回复|如有(?:急事|紧急)"
    r"|紧急(?:事务|事宜|事情|情况)请",
    re.I,
)  # what an autoresponder promises; a person's "I'll fix it when I return" is no promise


def classify(mail: InboundMail, own_addresses: Collection[str]) -> Verdict:
    """Every reason that makes ``mail`` automatic; none means a human wrote it."""
    bounce = _is_dsn(mail)
    headers = _headers(mail)
    opening = _opening(mail)
    reasons = [
        reason
        for reason in (
            _auto_submitted(headers),
            _precedence(headers),
            _list_mail(headers),
            _list_notice(mail, headers),
            *_signs(headers),
            _inbox_rule(headers),
            _x_loop(headers, own_addresses),
            _report(mail),
            _auto_reply(mail.subject, opening),
            _text(opening),
            _null_sender(headers),
            "delivery status notification" if bounce else None,
            _daemon_sender(mail),
            _own_sender(mail, own_addresses),
        )
        if reason
    ]
    return Verdict(automatic=bool(reasons), reasons=tuple(reasons), is_bounce=bounce)


def _is_dsn(mail: InboundMail) -> bool:
    """An RFC 3464 report or a plain failure notice (read by :mod:`mailticket.parse.dsn`)."""
    return mail.bounce is not None


def _headers(mail: InboundMail) -> dict[str, list[str]]:
    """The values of the headers read here, stripped and lower-cased, in one pass."""
    found: dict[str, list[str]] = {}
    for name, value in mail.headers:
        if name in _READ:
            found.setdefault(name, []).append(value.strip().lower())
    return found


def _auto_submitted(headers: dict[str, list[str]]) -> str | None:
    for value in headers.get("auto-submitted", ()):
        token = value.split(";")[0].strip()
        if token and token != "no":
            return f"Auto-Submitted: {token}"
    return None


def _precedence(headers: dict[str, list[str]]) -> str | None:
    """Bulk or list mail: may be a real request (stored as a ticket, never answered)."""
    values = (value for name in _PRECEDENCE for value in headers.get(name, ()))
    found = next((value for value in values if value in _BULK_PRECEDENCE), None)
    return f"Precedence: {found}" if found else None


def _list_mail(headers: dict[str, list[str]]) -> str | None:
    found = [name for name in _LIST_HEADERS if name in headers]
    return f"mailing list ({', '.join(found)})" if found else None


def _list_notice(mail: InboundMail, headers: dict[str, list[str]]) -> str | None:
    """A list server's notice, from its own address: automatic, and no list post (those
    may be requests: stored as tickets), so never a ticket of its own."""
    local = mail.from_addr.partition("@")[0]
    if not _LIST_SERVER.match(local) or not any(name in headers for name in _LIST_HEADERS):
        return None
    return f"list server notice (from {local})"


def _signs(headers: dict[str, list[str]]) -> Iterable[str]:
    """One reason per label of :data:`_SIGNS`, naming each header found and its value."""
    found: dict[str, list[str]] = {}
    for sign in _SIGNS:
        value = next((v for v in headers.get(sign.header, ()) if _shows(sign, v)), None)
        if value is not None:
            shown = sign.header if sign.value is None else f"{sign.header}: {value[:40]}"
            found.setdefault(sign.label, []).append(shown)
    return (f"{label} ({', '.join(items)})" for label, items in found.items())


def _inbox_rule(headers: dict[str, list[str]]) -> str | None:
    found = all(headers.get(name) for name in _INBOX_RULE)
    return f"{_AUTORESPONDER} ({', '.join(_INBOX_RULE)})" if found else None


def _shows(sign: _Sign, value: str) -> bool:
    return value not in _NO if sign.value is None else bool(sign.value.match(value))


def _x_loop(headers: dict[str, list[str]], own_addresses: Collection[str]) -> str | None:
    """``X-Loop`` naming us (procmail's and Zammad's mark of a mail already handled)."""
    own = {address.lower() for address in own_addresses}
    for value in headers.get("x-loop", ()):
        if value in ("yes", "true") or any(address in value for address in own):
            return f"{_MACHINE} (x-loop: {value[:40]})"
    return None


def _report(mail: InboundMail) -> str | None:
    """A ``multipart/report``: only mail systems and mail clients' receipts write one."""
    if mail.content_type != "multipart/report":
        return None
    return f"report ({mail.report_type or 'no report-type'})"


def _auto_reply(subject: str, opening: str) -> str | None:
    """The subject starts as autoresponders' and mail systems' subjects start; under a
    reply prefix only when the body's opening is automatic text too."""
    prefix = _REPLY_PREFIX.match(subject)
    label = _subject_marker(subject[prefix.end() :] if prefix else subject)
    if label is None or prefix is None:
        return label
    said = _FAILURE_TEXT.match(opening) or _ABSENT.search(opening)
    return f"{label} after a reply prefix, with automatic text" if said else None


def _subject_marker(subject: str) -> str | None:
    if _AUTO_REPLY_SUBJECT.match(subject) or _LOTUS_SUBJECT.match(subject):
        return "auto-reply subject"
    if FAILURE_SUBJECT.match(subject) or DOMINO_SUBJECT.match(subject):
        return "failure notice subject"
    return "abuse report subject" if _REPORT_SUBJECT.match(subject) else None


def _opening(mail: InboundMail) -> str:
    """The body's first lines, up to the quoted history; an HTML-only body untagged."""
    text = mail.text if mail.text.strip() else _untag(mail.html)
    lines: list[str] = []
    for line in text[: _OPENING * 2].lstrip().splitlines()[:_OPENING_LINES]:
        if _HISTORY.match(line):
            break
        lines.append(line)
    return "\n".join(lines)[:_OPENING]


def _untag(markup: str) -> str:
    """The text at the start of an HTML body, its head (Outlook's long CSS) left out."""
    body = markup.find("<body", 0, _HTML_HEAD)
    if body < 0:
        body = markup.find("<BODY", 0, _HTML_HEAD)
    start = markup[max(body, 0) : max(body, 0) + _HTML_OPENING]
    return html.unescape(_TAG.sub(" ", start))


def _text(opening: str) -> str | None:
    """A mail system's first line, or an absence with an autoresponder's promise."""
    if _FAILURE_TEXT.match(opening):
        return "failure notice text"
    if _ABSENT.search(opening) and _PROMISE.search(opening):
        return "auto-reply text"
    return None


def _null_sender(headers: dict[str, list[str]]) -> str | None:
    """``Return-Path: <>``, the null reverse-path of notifications (RFC 5321 4.5.5), or
    MAILER-DAEMON's. Only the topmost counts: the delivering MTA writes it (the listener
    and ``ingest --sender`` too, :mod:`mailticket.inbound.envelope`); any below are the sender's."""
    values = headers.get("return-path", ())[:1]
    if "<>" in values:
        return "null Return-Path"
    daemon = any(_DAEMON_RETURN_PATH.match(value) for value in values)
    return "Return-Path: MAILER-DAEMON" if daemon else None


def _daemon_sender(mail: InboundMail) -> str | None:
    if not mail.from_addr:
        return "no sender address"
    local = mail.from_addr.partition("@")[0]
    if _DAEMON_LOCALPART.match(local):
        return f"sent by {local}"
    return f"sent as {mail.from_name.strip()!r}" if DAEMON_NAME.match(mail.from_name) else None


def _own_sender(mail: InboundMail, own_addresses: Collection[str]) -> str | None:
    own = {address.lower() for address in own_addresses}
    return "sent from our own address" if mail.from_addr in own else None
