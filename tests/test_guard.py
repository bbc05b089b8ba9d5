"""guard.classify: automatic or not, and a bounce or not, from parsed mails.

Tables of literal inputs and the exact reason each gives; for every marker, the human
mail that looks most like it and must stay a human's.
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from mailticket.decide.guard import Verdict, classify
from mailticket.parse.mail import parse
from tests.conftest import build_mail

BOUNCES = Path(__file__).resolve().parent / "mails" / "bounces"
OWN = {"support@example.org"}
HUMAN = Verdict(automatic=False, reasons=(), is_bounce=False)
AUTO_REPLY = "auto-reply subject"
FAILURE = FAILURE_SUBJECT = "failure notice subject"


def verdict(
    *,
    subject: str = "Cannot log in",
    body: str = "Hello, I cannot log in since this morning.\n",
    sender: str = "Alice <alice@customer.example>",
    headers: dict[str, str] | None = None,
) -> Verdict:
    raw = build_mail(subject=subject, body=body, sender=sender, headers=headers)
    return classify(parse(raw), OWN)


@pytest.mark.parametrize(
    "name",
    ["qmail.eml", "exim.eml", "exchange.eml", "gmail.eml", "postfix.eml", "domino.eml"],
)
def test_failure_notices_are_automatic_bounces(name: str) -> None:
    found = classify(parse((BOUNCES / name).read_bytes()), OWN)
    assert found.is_bounce and found.automatic
    assert "delivery status notification" in found.reasons
    assert "failure notice subject" in found.reasons


DSN = "delivery status notification"


@pytest.mark.parametrize(
    ("name", "reasons"),
    [  # the kinds of automatic mail that were answered in issue 17, written after them
        ("gateway_returned_mail.eml", (FAILURE_SUBJECT, DSN)),
        ("scanner_rejected.eml", ("null Return-Path", DSN)),
        (
            "french_non_remis.eml",  # an ordinary sender, under "RE:": automatic, no bounce
            (f"{FAILURE_SUBJECT} after a reply prefix, with automatic text", "failure notice text"),
        ),
        ("daemon_display_name.eml", (DSN, "sent as 'Mail Delivery Subsystem'")),
        ("return_path_daemon.eml", ("Return-Path: MAILER-DAEMON", DSN)),
        ("lotus_auto.eml", ("auto-reply subject", "auto-reply text")),
        ("rt_autoreply.eml", ("auto-reply subject",)),
        ("auto_reply_no_colon.eml", ("auto-reply subject", "auto-reply text")),
        (
            "list_server_notice.eml",
            ("mailing list (list-subscribe, x-mlserver)", "list server notice (from help-admin)"),
        ),
    ],
)
def test_automatic_mail_of_issue_17(name: str, reasons: tuple[str, ...]) -> None:
    found = classify(parse((BOUNCES / name).read_bytes()), OWN)
    assert found == Verdict(True, reasons, is_bounce=DSN in reasons)


def test_out_of_office_is_automatic_but_no_bounce() -> None:
    found = classify(parse((BOUNCES / "out_of_office.eml").read_bytes()), OWN)
    assert found.automatic and not found.is_bounce
    assert "auto-reply subject" in found.reasons and "auto-reply text" in found.reasons


def test_a_read_receipt_is_an_automatic_report() -> None:
    found = classify(parse((BOUNCES / "read_receipt.eml").read_bytes()), OWN)
    assert found == Verdict(True, ("report (disposition-notification)",), is_bounce=False)


def test_a_person_forwarding_a_bounce_is_answered() -> None:
    assert classify(parse((BOUNCES / "forwarded_bounce.eml").read_bytes()), OWN) == HUMAN


@pytest.mark.parametrize(
    ("subject", "reason"),
    [
        # Exchange, Outlook, Gmail, Apple and others that set no RFC 3834 header
        ("Automatic reply: Cannot log in", AUTO_REPLY),
        ("Auto reply: Cannot log in", AUTO_REPLY),
        ("Auto-Reply: Cannot log in", AUTO_REPLY),
        ("AutoReply: Cannot log in", AUTO_REPLY),
        ("Autoresponse: Cannot log in", AUTO_REPLY),
        ("Auto Response", AUTO_REPLY),
        ("Auto reply", AUTO_REPLY),  # no colon (issue 17)
        ("Auto reply Re: [MT-3] Cannot log in", AUTO_REPLY),
        ("  automatic reply : Cannot log in", AUTO_REPLY),
        ("Out of Office: back on Monday", AUTO_REPLY),
        ("Out of Office AutoReply: Cannot log in", AUTO_REPLY),
        ("Out of the office", AUTO_REPLY),
        ("[support #1234] AutoReply: Cannot log in", AUTO_REPLY),  # RT
        ("AUTO: Jane Doe is out of the office (returning 05/06/2026)", AUTO_REPLY),  # Lotus
        ("Auto: Jane Doe is out of the office", AUTO_REPLY),
        ("AUTO: Hans Muster ist außer Haus", AUTO_REPLY),
        # European
        ("Autosvar: Faktura", AUTO_REPLY),
        ("Automatisk svar: Faktura", AUTO_REPLY),
        ("Frånvaro: Faktura", AUTO_REPLY),
        ("Abwesenheitsnotiz: Rechnung", AUTO_REPLY),
        ("Automatische Antwort: Rechnung", AUTO_REPLY),
        ("Automatisch antwoord: Factuur", AUTO_REPLY),
        ("Réponse automatique : Facture", AUTO_REPLY),
        ("Respuesta automática: Factura", AUTO_REPLY),
        ("Fuera de la oficina: Factura", AUTO_REPLY),
        ("Risposta automatica: Fattura", AUTO_REPLY),
        ("Fuori sede: Fattura", AUTO_REPLY),
        ("Odpowiedź automatyczna: Faktura", AUTO_REPLY),
        ("Автоматический ответ: Счёт", AUTO_REPLY),
        # Chinese and Japanese: QQ Mail, NetEase, Foxmail, Exchange in zh-CN and zh-TW
        ("自动回复: 发票", AUTO_REPLY),
        ("自动回复：发票", AUTO_REPLY),
        ("自动答复: 发票", AUTO_REPLY),
        ("自動回覆: 發票", AUTO_REPLY),
        ("【自动回复】发票", AUTO_REPLY),
        ("[自动回复] 发票", AUTO_REPLY),
        ("休假中", AUTO_REPLY),
        ("自動応答: 請求書", AUTO_REPLY),
        # failure notices from gateways that name no mail system as their sender
        ("Undeliverable: Cannot log in", FAILURE),
        ("Undelivered Mail Returned to Sender", FAILURE),
        ("Delivery Status Notification (Failure)", FAILURE),
        ("Delivery Status Notification (Delay)", FAILURE),
        ("Mail delivery failed: returning message to sender", FAILURE),
        ("Returned mail: see transcript for details", FAILURE),
        ("Returned Mail – Error During Delivery", FAILURE),
        ("failure notice", FAILURE),
        ("Mail System Error - Returned Mail", FAILURE),
        ("DELIVERY FAILURE: User jane not listed in Domino Directory", FAILURE),
        ("Non remis : Facture", FAILURE),
        ("Unzustellbar: Rechnung", FAILURE),
        ("Non recapitabile: Fattura", FAILURE),
        ("No se puede entregar: Factura", FAILURE),
        ("Onbestelbaar: Factuur", FAILURE),
        ("无法投递: 发票", FAILURE),
        ("無法傳遞: 發票", FAILURE),
        ("系统退信", FAILURE),
        ("complaint about message from 192.0.2.222", "abuse report subject"),  # Hotmail
    ],
)
def test_subjects_of_automatic_mail(subject: str, reason: str) -> None:
    assert verdict(subject=subject) == Verdict(True, (reason,), is_bounce=False)


@pytest.mark.parametrize(
    "subject",
    [
        "my auto reply setting is broken",
        "Auto reply setting is broken",
        "Automatic replies do not work in Outlook",
        "Autoresponder not working",
        "Out of office hours support?",
        "Out of Office not working",
        "Out of office - how do I set it?",
        "Auto: Reifenwechsel am Montag",  # German for car
        "Auto: returning the leased car",
        "Re: Automatic reply: Cannot log in",  # a person answering an auto-reply
        "Fwd: Undelivered Mail Returned to Sender",  # a person forwarding a bounce
        "FW: Automatic reply: Cannot log in",
        "Delivery failure of my parcel",
        "Undeliverable package",
        "Mail delivery failed when I send to Bob",
        "Returned goods",
        "Returned mail - why?",
        "Failure notice on my invoice",
        "Delivery Status Notification settings",
        "Question about the abuse report",
        "自动回复设置不生效",
        "休假申请",
        "关于休假的问题",
        "退信了怎么办",
        "Hello",
    ],
)
def test_people_writing_about_auto_replies_are_not_automatic(subject: str) -> None:
    assert verdict(subject=subject) == HUMAN


OUT_OF_OFFICE = (
    "I am currently out of the office with limited access to email.\n"
    "I will respond to your message upon my return on 5 May.\n"
)


@pytest.mark.parametrize(
    ("subject", "body", "reason"),
    [
        (
            "RE: Automatic reply: Cannot log in",
            "I am out of the office.\n",
            "auto-reply subject after a reply prefix, with automatic text",
        ),
        (
            "回复: 自动回复: 发票",
            "我正在休假。\n",
            "auto-reply subject after a reply prefix, with automatic text",
        ),
        (
            "RE: Non remis : Facture",  # issue 17
            "Votre message n'a pas pu être remis.\n",
            "failure notice subject after a reply prefix, with automatic text",
        ),
        (
            "AW: Unzustellbar: Rechnung",
            "Ihre Nachricht hat einige oder alle Empfänger nicht erreicht.\n",
            "failure notice subject after a reply prefix, with automatic text",
        ),
    ],
)
def test_a_subject_marker_under_a_reply_prefix_needs_automatic_text(
    subject: str, body: str, reason: str
) -> None:
    found = verdict(subject=subject, body=body)
    assert found.automatic and reason in found.reasons
    assert not verdict(subject=subject, body="Thanks, who else can help me?\n").automatic


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (OUT_OF_OFFICE, "auto-reply text"),
        (
            "Thank you for your email. I'm out of the office until Monday and will reply "
            "when I return.\n",
            "auto-reply text",
        ),
        (
            "Hello,\n\nI'm away from the office. For urgent matters please call Bob.\n",
            "auto-reply text",
        ),
        ("您好，我现在不在办公室，回来后会尽快回复您。\n", "auto-reply text"),
        ("我正在休假，如有急事请联系张三。\n", "auto-reply text"),
        ("本人休假中，紧急事务请联系李四。\n", "auto-reply text"),
        (
            "Ich bin bis 5. Mai nicht im Büro. In dringenden Fällen wenden Sie sich an Bob.\n",
            "auto-reply text",
        ),
        ("Je suis absente jusqu'au 5 mai. En cas d'urgence, appelez Bob.\n", "auto-reply text"),
        ("Estoy fuera de la oficina. A mi regreso responderé.\n", "auto-reply text"),
        ("Sono fuori ufficio. Al mio rientro risponderò.\n", "auto-reply text"),
        ("This is the mail system at host mx.example.com.\n", "failure notice text"),
        (
            "This message was created automatically by mail delivery software.\n",
            "failure notice text",
        ),
        ("Hi. This is the qmail-send program at example.com.\n", "failure notice text"),
        (
            "Your message did not reach some or all of the intended recipients.\n",
            "failure notice text",
        ),
        ("很抱歉您发送的邮件无法送达。\n", "failure notice text"),
        (
            "Delivery has failed to these recipients or groups:\n\nbob@example.org\n",
            "failure notice text",
        ),
        ("Remise à ces destinataires ou groupes impossible :\n", "failure notice text"),
        (
            "Übermittlung an folgende Empfänger oder Gruppen fehlgeschlagen:\n",
            "failure notice text",
        ),
        ("传递到这些收件人或组失败:\n", "failure notice text"),
        (
            "Your message to bob@example.org couldn't be delivered.\n",
            "failure notice text",
        ),
        (
            "The original message was received at Thu, 29 Apr 2010 23:34:45 +0900\n",
            "failure notice text",
        ),
    ],
)
def test_first_lines_of_automatic_mail(body: str, reason: str) -> None:
    assert verdict(subject="Re: Cannot log in", body=body) == Verdict(
        True, (reason,), is_bounce=False
    )


@pytest.mark.parametrize(
    "body",
    [
        "Hi, I'm out of the office and cannot connect to the VPN. Can you reset my token?\n",
        "I am out of the office until Friday and need VPN access.\n",
        "I'm on vacation, I'll fix the invoice when I return.\n",
        "I am out of the office.\n",  # says nothing an autoresponder promises
        "您好，我现在不在办公室，VPN连不上，很紧急！\n",
        "我正在休假，但是需要重置密码。\n",
        "Ich bin nicht im Büro und kann mich nicht anmelden.\n",
        "My mail bounced. The bounce said:\nThis is the mail system at host mx.example.com.\n",
        # quoted history below a person's words is not their opening
        "Who else can help?\n\n> I am out of the office with limited access to email.\n",
        "Who else can help?\n\nFrom: Bob\nSent: Monday\n\n" + OUT_OF_OFFICE,
        "Who else can help?\n\nOn Mon, 2 Nov 2026, Bob wrote:\n" + OUT_OF_OFFICE,
        "谁能帮我？\n\n发件人: 张三\n发送时间: 2026年11月2日\n我正在休假，如有急事请联系李四。\n",
        "> This is the mail system at host mx.example.com.\n",
        "The original message was received at our office but the invoice is missing.\n",
        "My message to bob@example.org couldn't be delivered, why?\n",
    ],
)
def test_people_mentioning_absence_or_bounces_are_not_automatic(body: str) -> None:
    assert verdict(subject="Re: Cannot log in", body=body) == HUMAN


def test_an_html_only_auto_reply_is_read_from_its_html() -> None:
    markup = (
        "<html><head><style>p {color: red}</style></head><body><p>I am out of the office"
        "</p><p>I will reply to your message upon my return.</p></body></html>\n"
    )
    raw = build_mail(subject="Re: Cannot log in", body=markup)
    mail = parse(raw.replace(b"Content-Type: text/plain", b"Content-Type: text/html"))
    assert mail.content_type == "text/html"
    assert classify(mail, OWN).reasons == ("auto-reply text",)


def test_a_blank_plain_part_beside_html_is_read_from_the_html() -> None:
    message = EmailMessage()
    message["From"] = "Bob <bob@customer.example>"
    message["To"] = "support@example.org"
    message["Subject"] = "Re: Cannot log in"
    message.set_content(" \n")
    message.add_alternative(
        "<html><head><style>p {}</style></head><body><p>This is the mail system at host"
        " mx.example.com.</p></body></html>",
        subtype="html",
    )
    mail = parse(message.as_bytes())  # text blank today; issue 17 may fill it from the HTML
    assert classify(mail, OWN).reasons == ("failure notice text",)


def autoresponder(*items: str) -> str:
    return f"autoresponder header ({', '.join(items)})"


MACHINE = "machine-generated header"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Auto-Submitted": "auto-replied"}, "Auto-Submitted: auto-replied"),
        (
            {"Auto-Submitted": "auto-generated (failure)"},
            "Auto-Submitted: auto-generated (failure)",
        ),
        ({"Auto-Submitted": "Auto-Notified; owner-email=x@y"}, "Auto-Submitted: auto-notified"),
        ({"Precedence": "bulk"}, "Precedence: bulk"),
        ({"X-Precedence": "Junk"}, "Precedence: junk"),
        ({"List-Id": "<help.lists.example>"}, "mailing list (list-id)"),
        ({"List-Post": "<mailto:l@x.example>"}, "mailing list (list-post)"),
        ({"Mailing-List": "contact l-help@x.example; run by ezmlm"}, "mailing list (mailing-list)"),
        ({"X-Autoreply": "yes"}, autoresponder("x-autoreply")),  # Gmail
        ({"X-Autorespond": "Nyaan"}, autoresponder("x-autorespond")),  # cPanel
        ({"X-AutoReply-From": "a@b.example"}, autoresponder("x-autoreply-from")),
        ({"X-Mail-Autoreply": "a@b.example"}, autoresponder("x-mail-autoreply")),
        ({"X-Amazon-Auto-Reply": "1"}, autoresponder("x-amazon-auto-reply")),
        (
            {"X-MS-Exchange-Inbox-Rules-Loop": "a@b.example", "X-Auto-Response-Suppress": "All"},
            autoresponder("x-ms-exchange-inbox-rules-loop", "x-auto-response-suppress"),
        ),
        ({"X-Apple-Action": "VACATION"}, autoresponder("x-apple-action: vacation")),
        ({"Precedence": "auto_reply"}, autoresponder("precedence: auto_reply")),
        ({"X-Precedence": "auto_reply"}, autoresponder("x-precedence: auto_reply")),
        ({"Preference": "auto_reply"}, autoresponder("preference: auto_reply")),  # cPanel
        ({"X-Autogenerated": "Reply"}, autoresponder("x-autogenerated: reply")),  # CommuniGate
        (
            {"X-POST-MessageClass": "9; Autoresponder"},
            autoresponder("x-post-messageclass: 9; autoresponder"),
        ),
        ({"Delivered-To": "Autoresponder"}, autoresponder("delivered-to: autoresponder")),
        ({"X-Mailer": "Vacation 1.2.7"}, autoresponder("x-mailer: vacation 1.2.7")),
        ({"X-FC-MachineGenerated": "true"}, f"{MACHINE} (x-fc-machinegenerated: true)"),
        ({"X-Amz-SNS-Message-Id": "ad6bdf42"}, f"{MACHINE} (x-amz-sns-message-id)"),
        ({"X-Loop": "support@example.org"}, f"{MACHINE} (x-loop: support@example.org)"),
        ({"X-Loop": "yes"}, f"{MACHINE} (x-loop: yes)"),
        ({"Return-Path": "<>"}, "null Return-Path"),
        ({"Return-Path": "<MAILER-DAEMON@mx.customer.example>"}, "Return-Path: MAILER-DAEMON"),
        ({"Return-Path": "<MAILER-DAEMON>"}, "Return-Path: MAILER-DAEMON"),
    ],
)
def test_headers_of_automatic_mail(headers: dict[str, str], reason: str) -> None:
    assert verdict(headers=headers) == Verdict(True, (reason,), is_bounce=False)


@pytest.mark.parametrize(
    ("sender", "headers", "reasons"),
    [  # a list server's notice: no post, so no ticket (fml, Majordomo, ezmlm, Mailman)
        (
            "help-admin@lists.example",
            {"X-MLServer": "fml [fml 4.0.3]"},
            ("mailing list (x-mlserver)", "list server notice (from help-admin)"),
        ),
        (
            "owner-help@lists.example",
            {"List-Id": "<help.lists.example>"},
            ("mailing list (list-id)", "list server notice (from owner-help)"),
        ),
        (
            "help-bounces@lists.example",
            {"List-Id": "<help.lists.example>"},
            ("mailing list (list-id)", "list server notice (from help-bounces)"),
        ),
        # a person's post to a list, and a person whose address looks like a list's
        (
            "alice@customer.example",
            {"List-Id": "<help.lists.example>"},
            ("mailing list (list-id)",),
        ),
        ("it-admin@customer.example", {}, ()),
    ],
)
def test_list_server_notices(
    sender: str, headers: dict[str, str], reasons: tuple[str, ...]
) -> None:
    assert verdict(sender=sender, headers=headers).reasons == reasons


def test_several_autoresponder_headers_are_one_reason() -> None:
    found = verdict(headers={"X-Autoreply": "yes", "Precedence": "auto_reply"})
    assert found.reasons == (autoresponder("x-autoreply", "precedence: auto_reply"),)


@pytest.mark.parametrize(
    "headers",
    [
        # a request not to answer automatically, written by Outlook on people's mail
        {"X-Auto-Response-Suppress": "All"},
        {"X-Auto-Response-Suppress": "DR, RN, NRN, OOF, AutoReply"},
        # Exchange stamps this on a person's mail that an inbox rule forwards or redirects
        {"X-MS-Exchange-Inbox-Rules-Loop": "info@customer.example"},
        {"Auto-Submitted": "no"},
        {"X-Autoreply": "no"},
        {"X-Autogenerated": "Forward"},  # CommuniGate forwarding a person's mail
        {"X-Autogenerated": "Redirect"},
        {"X-Loop": "helpdesk@customer.example"},
        {"X-Yahoo-Newman-Property": "ymail-3"},  # every Yahoo webmail mail
        {"Feedback-ID": "1.us-west-2.abc:AmazonSES"},  # bulk platforms carry people's words
        {"X-Mailer": "Microsoft Outlook 16.0"},
        {"Delivered-To": "support@example.org"},
        {"Return-Path": "<alice@customer.example>"},
        {"Precedence": "first-class"},
        {"X-MS-Exchange-Organization-AutoResponse": ""},
    ],
)
def test_headers_of_people_s_mail(headers: dict[str, str]) -> None:
    assert verdict(headers=headers) == HUMAN


@pytest.mark.parametrize(
    ("sender", "reason"),
    [
        ("MAILER-DAEMON@mx.example.com", "sent by mailer-daemon"),
        ("Mailer_Daemon <mailer_daemon@mx.example.com>", "sent by mailer_daemon"),
        ("postmaster@example.com", "sent by postmaster"),
        (
            "Mail Delivery Subsystem <gateway@customer.example>",
            "sent as 'Mail Delivery Subsystem'",
        ),
        ("Mail Delivery System <relay@customer.example>", "sent as 'Mail Delivery System'"),
        ("support@example.org", "sent from our own address"),
    ],
)
def test_senders_of_automatic_mail(sender: str, reason: str) -> None:
    assert verdict(sender=sender) == Verdict(True, (reason,), is_bounce=False)


@pytest.mark.parametrize(
    "sender",
    [
        "noreply@shop.example",  # a web form: the customer's words, their address in Reply-To
        "Postmaster General <pg@post.example>",
        "Mail Delivery Team <team@post.example>",
        "daemon@customer.example",
    ],
)
def test_senders_of_people_s_mail(sender: str) -> None:
    assert verdict(sender=sender) == HUMAN


def test_every_reason_is_listed() -> None:
    found = verdict(
        sender="MAILER-DAEMON@mx.example.com",
        subject="Undeliverable: Cannot log in",
        body="This is the mail system at host mx.example.com.\n\n<bob@example.org>: unknown\n",
        headers={"Auto-Submitted": "auto-replied", "Return-Path": "<>"},
    )
    assert found == Verdict(
        automatic=True,
        reasons=(
            "Auto-Submitted: auto-replied",
            "failure notice subject",
            "failure notice text",
            "null Return-Path",
            "delivery status notification",
            "sent by mailer-daemon",
        ),
        is_bounce=True,
    )
