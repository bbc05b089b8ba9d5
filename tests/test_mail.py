"""parse(): raw bytes -> InboundMail, on hand-written mails (tests/mails, make_mails.py)."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta, timezone
from operator import attrgetter
from pathlib import Path

import pytest

from mailticket.errors import ParseError, SenderRejected
from mailticket.parse.mail import (
    AttachedFile,
    Bounce,
    InboundMail,
    language,
    parse,
    peek_message_id,
    safe_filename,
    sendable_address,
)

MAILS = Path(__file__).resolve().parent / "mails"
CST = timezone(timedelta(hours=8))


def fixture(name: str) -> InboundMail:
    return parse((MAILS / name).read_bytes())


def mail(*headers: bytes, body: bytes = b"body\r\n") -> bytes:
    """A small raw mail from literal header lines."""
    return b"\r\n".join(headers) + b"\r\n\r\n" + body


@pytest.mark.parametrize(
    ("name", "field", "expected"),
    [
        ("outlook_gb2312.eml", "subject", "关于朱镕基的问题"),
        ("outlook_gb2312.eml", "text", "您好，\n朱镕基和王堃的账户无法登录。\n谢谢\n"),
        ("outlook_gb2312.eml", "from_addr", "wangkun@example.com"),
        ("outlook_gb2312.eml", "from_name", "王堃"),
        ("outlook_gb2312.eml", "to", ("support@example.com", "li.lei@example.com")),
        ("outlook_gb2312.eml", "cc", ("cc@example.com",)),
        ("outlook_gb2312.eml", "language", "zh"),
        ("outlook_gb2312.eml", "lossy", False),
        ("outlook_gb2312.eml", "content_type", "multipart/alternative"),
        ("outlook_gb2312.eml", "date", datetime(2026, 3, 3, 10, 15, tzinfo=CST)),
        ("outlook_gb2312.eml", "message_id", "<outlook-1@example.com>"),
        ("big5_microsoft.eml", "subject", "碁恒"),
        ("big5_microsoft.eml", "text", "圍棋的碁，恒久的恒\n\n"),
        ("big5_hkscs.eml", "text", "係咪㗎？\n\n"),
        ("ks_c_5601.eml", "subject", "똠방각하"),
        ("ks_c_5601.eml", "text", "똠방각하\n\n"),
        ("ks_c_5601.eml", "language", "en"),
        ("utf7.eml", "text", "Hello 世界\n\n"),
        ("unknown_charset.eml", "lossy", False),
        ("unknown_charset.eml", "language", "zh"),
        (
            "html_only.eml",
            "text",
            "Hello team,\n\nThe invoice is wrong.\nPlease fix it.\n\n  * one\n  * two",
        ),
        ("html_only.eml", "content_type", "text/html"),
        ("html_only.eml", "from_name", "Phone User"),
        ("forwarded.eml", "text", "See below."),
        ("rfc2231.eml", "text", "See the files."),
        ("dsn.eml", "content_type", "multipart/report"),
        ("dsn.eml", "report_type", "delivery-status"),
        ("dsn.eml", "from_addr", "mailer-daemon@mx.example.net"),
        # a body for every mail that has text
        (
            "groupwise_forward.eml",
            "text",
            "The printer on floor 3 jams on every page. Café is closed too.",
        ),
        ("groupwise_forward.eml", "html", "<p>The printer on floor 3 jams on every page.</p>"),
        ("blank_plain_html.eml", "text", "发票金额不对\n\nPlease fix it.\n"),
        ("blank_plain_html.eml", "language", "zh"),
        ("winmail_rtf.eml", "text", "您好，\nThe quote is attached. 报价单在附件。\n"),
        ("winmail_text.eml", "text", "See the quote."),  # the plain part; the RTF repeats it
        # raw 8-bit headers in another script are not read as Chinese
        ("koi8_raw_subject.eml", "subject", "тест тест"),
        ("koi8_raw_subject.eml", "from_name", "Иван Петров"),
        ("koi8_raw_subject.eml", "from_addr", "ivan@example.ru"),
    ],
)
def test_fixture_field(name: str, field: str, expected: object) -> None:
    assert attrgetter(field)(fixture(name)) == expected


def test_outlook_html_alternative_is_kept_beside_the_text() -> None:
    parsed = fixture("outlook_gb2312.eml")
    assert "<p>朱镕基和王堃的账户无法登录。</p>" in parsed.html
    assert parsed.attachments == ()


def test_unknown_charset_is_detected_exactly() -> None:
    assert fixture("unknown_charset.eml").text.startswith("您好，我们公司上个月购买的服务器")


@pytest.mark.parametrize("name", ["winmail_rtf.eml", "winmail_text.eml"])
def test_winmail_dat_is_unpacked_into_its_files(name: str) -> None:
    parsed = fixture(name)
    assert [(a.filename, a.content_type, a.content) for a in parsed.attachments] == [
        ("报价单.txt", "text/plain", "单价 100 元\r\n".encode("gbk")),
        ("logo.png", "image/png", b"\x89PNG\r\n\x1a\n" + bytes(range(32))),
    ]
    assert b"winmail.dat" in parsed.raw  # the blob itself stays in the raw mail
    assert not parsed.lossy


def test_html_only_mail_keeps_the_html() -> None:
    parsed = fixture("html_only.eml")
    assert parsed.html.startswith("<html><head><style>")
    assert "color: red" not in parsed.text


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"Subject: =?gb2312?B?udjT2tbs6Ua7+bXEzsrM4g==?=", "关于朱镕基的问题"),  # GBK in gb2312
        (b"Subject: =?x-gbk?B?zfWI0g==?=", "王堃"),
        (b"Subject: =?big5?B?+db52g==?=", "碁恒"),
        (b"Subject: =?ks_c_5601-1987?B?jGO55g==?=", "똠방"),
        (b"Subject: =?unicode-1-1-utf-7?Q?+ThZ1TA-?=", "世界"),
        (b"Subject: =?x-unknown?B?5Lit5paH?=", "中文"),
        (b"Subject: \xe6\x8a\xa5\xe4\xbb\xb7\xe5\x8d\x95", "报价单"),  # raw UTF-8
        (b"Subject: \xcd\xf5\x88\xd2", "王堃"),  # raw GBK
        (b"Subject: Re: =?utf-8?Q?caf=C3=A9?=\r\n =?utf-8?Q?_au_lait?=", "Re: café au lait"),
        (b"Subject: a very long\r\n\tsubject", "a very long subject"),
        (b"X-Other: 1", ""),
    ],
)
def test_subject(header: bytes, expected: str) -> None:
    assert parse(mail(b"From: a@example.com", header)).subject == expected


def test_8bit_header_uses_the_charset_the_mail_declares() -> None:
    raw = mail(
        b"From: a@example.com",
        b"Subject: Forma\xe7\xe3o de Ver\xe3o",  # windows-1252; GB18030 would read Chinese
        b"Content-Type: text/plain; charset=windows-1252",
    )
    assert parse(raw).subject == "Formação de Verão"


@pytest.mark.parametrize(
    ("header", "address", "name"),
    [
        (b"From: Someone <Some.One@Example.COM>", "some.one@example.com", "Someone"),
        (b"From: plain@example.com", "plain@example.com", ""),
        (b"From: plain@example.com (Comment Name)", "plain@example.com", "Comment Name"),
        (b"From: =?gb2312?B?zfWI0g==?= <wk@example.cn>", "wk@example.cn", "王堃"),
        (b'From: "=?utf-8?B?546L5aCD?=" <wk@example.cn>', "wk@example.cn", "王堃"),
        (b"From: \xcd\xf5\x88\xd2 <wk@example.cn>", "wk@example.cn", "王堃"),
        (b"From: =?utf-8?Q?Doe=2C_John?= <j@example.com>", "j@example.com", "Doe, John"),
        (  # a display name that decodes to an address must not become the sender
            b"From: =?utf-8?Q?agent=40example.com_<agent@example.com>?= <attacker@evil.example>",
            "attacker@evil.example",
            "agent@example.com <agent@example.com>",
        ),
        (b"From: MAILER-DAEMON (Mail Delivery System)", "", ""),  # bounces come from no one
        (b"From: Mail Delivery System <>", "", ""),
        (b"From: <<<>>>", "", ""),
        (  # an encoded CR LF cannot reach a header line through the display name
            b"From: =?utf-8?Q?Bob=0D=0ABcc:_x@evil.example?= <bob@example.com>",
            "bob@example.com",
            "Bob  Bcc: x@evil.example",
        ),
    ],
)
def test_from(header: bytes, address: str, name: str) -> None:
    parsed = parse(mail(header, b"Subject: s"))
    assert (parsed.from_addr, parsed.from_name) == (address, name)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ((b"Sender: nobody@example.com",), "sender: no From header"),
        ((b"From: ",), "sender: no valid address in From ''"),
        ((b"From: Just A Name",), "sender: no valid address in From 'Just A Name'"),
        ((b"From: big bug bb@bug.com",), "sender: no valid address in From 'big bug bb@bug.com'"),
        ((b"From: a@b_c.example",), "sender: no valid address in From 'a@b_c.example'"),
        (
            (b"From: a@mailticket.invalid",),
            "sender: no valid address in From 'a@mailticket.invalid'",
        ),
        ((b'From: "evil@x.example, v"@y.example',), "sender: no valid address in From"),
        ((b"From: =?utf-8?Q?bob=40example.com?=",), "sender: no valid address in From"),
        (
            (b"From: A <a@example.com>, b@example.com",),
            "sender: From names 2 mailboxes (a@example.com, b@example.com): the requester is ambiguous",
        ),
        (
            (
                b"From: a@example.com",
                b"From: b@example.com",
            ),  # two From fields: RFC 5322 allows one
            "sender: From names 2 mailboxes (a@example.com, b@example.com): the requester is ambiguous",
        ),
    ],
)
def test_mail_without_one_valid_sender_is_rejected(headers: tuple[bytes, ...], reason: str) -> None:
    with pytest.raises(SenderRejected) as rejected:
        parse(mail(*headers, b"Subject: s", b"Message-ID: <who@example.com>"))
    assert str(rejected.value).startswith(reason)
    assert rejected.value.message_id == "<who@example.com>"


@pytest.mark.parametrize(
    "headers",
    [
        (b"From: MAILER-DAEMON",),  # no domain
        (b"From: Mail Delivery Subsystem <MAILER-DAEMON>",),
        (b"From: postmaster",),
        (b"From: <>",),
        (b"Auto-Submitted: auto-replied",),  # RFC 3834, and no From at all
        (b"Content-Type: multipart/report; report-type=delivery-status; boundary=b",),
    ],
)
def test_bounces_and_auto_replies_may_come_from_no_one(headers: tuple[bytes, ...]) -> None:
    parsed = parse(mail(*headers, b"Subject: Undelivered Mail"))
    assert parsed.from_addr == ""


def test_same_sender_twice_is_one_sender() -> None:
    parsed = parse(mail(b"From: A <a@example.com>", b"From: a@EXAMPLE.com", b"Subject: s"))
    assert parsed.from_addr == "a@example.com"


@pytest.mark.parametrize(
    ("address", "sendable"),
    [
        ("alice@customer.example", "alice@customer.example"),
        ("Alice.Smith@Customer.EXAMPLE", "alice.smith@customer.example"),
        ("wk@example.cn", "wk@example.cn"),
        ("wk@例子.中国", "wk@xn--fsqu00a.xn--fiqs8s"),  # the ASCII form of the domain
        ("mailer-daemon@mx", "mailer-daemon@mx"),  # a dotless host name: mail from inside a network
        ("someone@lab.test", "someone@lab.test"),
        ("root@localhost", "root@localhost"),  # cron mail
        ("someone@printer.local", "someone@printer.local"),  # an intranet
        ("x@mailticket.invalid", None),  # special-use names that reach no one
        ("x@abcdefghijklmnop.onion", None),
        ("用户@例子.中国", "用户@xn--fsqu00a.xn--fiqs8s"),  # RFC 6531: sent with SMTPUTF8
        ("JOSÉ@Example.com", "josé@example.com"),
        ('"a b"@example.com', '"a b"@example.com'),  # quoted words: a valid sender
        ('"a,b"@example.com', None),  # recipients are stored comma-separated
        ('"a  b"@example.com', None),
        ("a@[192.0.2.1]", None),
        ("a..b@example.com", None),
        ("a@b_c.example", None),
        ("@example.com", None),
        ("a@example.com\r\nbcc:x@y.example", None),
        ("", None),
    ],
)
def test_sendable_address(address: str, sendable: str | None) -> None:
    assert sendable_address(address) == sendable


@pytest.mark.parametrize(
    ("headers", "field", "expected"),
    [
        ((b"To: A <A@x.org>, b@y.org, undisclosed-recipients:;",), "to", ("a@x.org", "b@y.org")),
        ((b"To: a@x.org", b"To: c@x.org, A@X.org"), "to", ("a@x.org", "c@x.org")),
        ((b"Cc: =?utf-8?Q?a,b?= <x@y.z>, c@d.e",), "cc", ("x@y.z", "c@d.e")),
        ((b"Reply-To: Team <team@example.com>",), "reply_to", ("team@example.com",)),
        ((b"To: no-at-sign",), "to", ()),
        ((b"Cc: ok@example.com, @example.com, x@y_z.example",), "cc", ("ok@example.com",)),
        ((b"To: first@example.com, " + b"=?utf-8?Q?x:1?= " * 3000,), "to", ("first@example.com",)),
    ],
)
def test_address_lists(headers: tuple[bytes, ...], field: str, expected: tuple[str, ...]) -> None:
    assert attrgetter(field)(parse(mail(b"From: a@example.com", *headers))) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"Message-ID: <abc@example.com>", "<abc@example.com>"),
        (b"Message-Id:  < abc@example.com >", "<abc@example.com>"),
        (b"Message-ID:\r\n <abc@example.com>", "<abc@example.com>"),
        (b"Message-ID: abc@example.com", "<abc@example.com>"),
        (b"Message-ID: <abc@example.com> (comment)", "<abc@example.com>"),
    ],
)
def test_message_id(header: bytes, expected: str) -> None:
    parsed = parse(mail(b"From: a@example.com", header))
    assert (parsed.message_id, parsed.has_message_id, parsed.dedupe_key) == (
        expected,
        True,
        expected,
    )


@pytest.mark.parametrize("header", [b"X-No-Id: 1", b"Message-ID:", b"Message-ID: <>"])
def test_missing_message_id_gets_a_synthetic_one(header: bytes) -> None:
    raw = mail(b"From: a@example.com", header)
    digest = hashlib.sha256(raw).hexdigest()
    parsed = parse(raw)
    assert parsed.has_message_id is False
    assert parsed.message_id == f"<sha256-{digest}@mailticket.invalid>"
    assert parsed.dedupe_key == f"sha256:{digest}"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"Date: Tue, 3 Mar 2026 10:15:00 +0800", datetime(2026, 3, 3, 10, 15, tzinfo=CST)),
        (b"Date: Tue, 3 Mar 2026 02:15:00 GMT", datetime(2026, 3, 3, 2, 15, tzinfo=UTC)),
        (b"Date: Tue, 3 Mar 2026 02:15:00 -0000", datetime(2026, 3, 3, 2, 15, tzinfo=UTC)),
        (b"Date: 3 Mar 2026 02:15:00", datetime(2026, 3, 3, 2, 15, tzinfo=UTC)),  # naive: UTC
        (b"Date: yesterday, around noon", None),
        (b"Date: Tue, 3 Mar 2026 02:15:00 +9999", None),
        (b"Date: ", None),
        (b"X-No-Date: 1", None),
    ],
)
def test_date(header: bytes, expected: datetime | None) -> None:
    parsed = parse(mail(b"From: a@example.com", header))
    assert parsed.date == expected
    assert parsed.date is None or parsed.date.tzinfo is not None


def test_threading_ids_in_order_without_repeats() -> None:
    parsed = parse(
        mail(
            b"From: a@example.com",
            b"In-Reply-To: <MT-7.sig@support.example.com> (our mail)",
            b"References: <root@x.org>\r\n <MT-7.sig@support.example.com>  <root@x.org>",
            b"References: not-an-id <late@x.org>",
        )
    )
    assert parsed.in_reply_to == ("<MT-7.sig@support.example.com>",)
    assert parsed.references == ("<root@x.org>", "<MT-7.sig@support.example.com>", "<late@x.org>")


def test_headers_are_decoded_lower_case_and_in_order() -> None:
    raw = mail(
        b"From: a@example.com",
        b"X-Tag: one",
        b"Subject: =?utf-8?B?5Lit5paH?=",
        b"X-TAG: two",
    )
    parsed = parse(raw)
    assert parsed.headers == (
        ("from", "a@example.com"),
        ("x-tag", "one"),
        ("subject", "中文"),
        ("x-tag", "two"),
    )
    assert parsed.header("X-Tag") == ("one", "two")
    assert (parsed.raw, parsed.sha256) == (raw, hashlib.sha256(raw).hexdigest())


@pytest.mark.parametrize(
    ("body", "headers", "text", "lossy"),
    [
        (b"line one\r\nline two\rthree\n", (), "line one\nline two\nthree\n", False),
        (b"caf\xc3\xa9", (b"Content-Type: text/plain; charset=utf-8",), "café", False),
        (b"caf\xe9", (b"Content-Type: text/plain; charset=utf-8",), "caf\ufffd", True),
        (b"Y2Fmw6k=", (b"Content-Transfer-Encoding: base64",), "café", False),  # no charset
        (b"caf=C3=A9", (b"Content-Transfer-Encoding: quoted-printable",), "café", False),
        (b"", (), "", False),
    ],
)
def test_single_part_text(body: bytes, headers: tuple[bytes, ...], text: str, lossy: bool) -> None:
    parsed = parse(mail(b"From: a@example.com", *headers, body=body))
    assert (parsed.text, parsed.lossy) == (text, lossy)


MULTIPART = (b"From: a@example.com", b'Content-Type: multipart/mixed; boundary="b"')


@pytest.mark.parametrize(
    ("body", "text", "html", "names"),
    [
        (  # alternative: the plain part is the text, the HTML part the html
            b'--b\r\nContent-Type: multipart/alternative; boundary="a"\r\n\r\n'
            b"--a\r\nContent-Type: text/plain\r\n\r\nplain\r\n"
            b"--a\r\nContent-Type: text/html\r\n\r\n<p>rich</p>\r\n--a--\r\n--b--\r\n",
            "plain",
            "<p>rich</p>",
            [],
        ),
        (  # two inline text parts are joined; a text attachment is not text
            b"--b\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
            b"--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt"
            b"\r\n\r\nfile\r\n"
            b"--b\r\nContent-Type: text/plain\r\nContent-Disposition: inline\r\n\r\nsecond\r\n"
            b"--b--\r\n",
            "first\nsecond",
            "",
            ["a.txt"],
        ),
        (  # alternative of plain and related(html, image): image is an attachment
            b'--b\r\nContent-Type: multipart/alternative; boundary="a"\r\n\r\n'
            b"--a\r\nContent-Type: text/plain\r\n\r\nplain\r\n"
            b'--a\r\nContent-Type: multipart/related; boundary="r"\r\n\r\n'
            b"--r\r\nContent-Type: text/html\r\n\r\n<img src=cid:x>\r\n"
            b"--r\r\nContent-Type: image/gif\r\nContent-ID: <x>\r\n\r\nGIF89a\r\n--r--\r\n"
            b"--a--\r\n--b--\r\n",
            "plain",
            "<img src=cid:x>",
            ["attachment-1.gif"],
        ),
        (  # a calendar invitation and a nameless PDF get names
            b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
            b"--b\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\nBEGIN:VCALENDAR\r\n"
            b"--b\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n--b--\r\n",
            "hi",
            "",
            ["invite.ics", "attachment-2.pdf"],
        ),
        (  # a text part with a file name is an attached file, even inline (Apple Mail)
            b"--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
            b"--b\r\nContent-Type: text/plain; name=log.txt\r\nContent-Disposition: inline"
            b"\r\n\r\nlog line\r\n--b--\r\n",
            "body",
            "",
            ["log.txt"],
        ),
        (  # an HTML part without a charset parameter names it in <meta>
            b"--b\r\nContent-Type: text/html\r\n\r\n"
            b'<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312">'
            b"</head><body>\xcd\xf5\x88\xd2</body></html>\r\n--b--\r\n",
            "王堃",
            '<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312">'
            "</head><body>王堃</body></html>",
            [],
        ),
        (  # a blank plain alternative: the text is the HTML's
            b'--b\r\nContent-Type: multipart/alternative; boundary="a"\r\n\r\n'
            b"--a\r\nContent-Type: text/plain\r\n\r\n \r\n\r\n"
            b"--a\r\nContent-Type: text/html\r\n\r\n<p>rich</p>\r\n--a--\r\n--b--\r\n",
            "rich\n",
            "<p>rich</p>",
            [],
        ),
        (  # no text of its own: a forwarded message's text is the body, and stays attached
            b"--b\r\nContent-Type: text/plain\r\n\r\n\r\n"
            b"--b\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n"
            b"Subject: inner\r\n\r\ninner text\r\n--b--\r\n",
            "inner text",
            "",
            ["message.eml"],
        ),
        (  # own text: the forwarded message stays only an attachment
            b"--b\r\nContent-Type: text/plain\r\n\r\nmine\r\n"
            b"--b\r\nContent-Type: message/rfc822\r\n\r\n"
            b"Subject: inner\r\n\r\ninner text\r\n--b--\r\n",
            "mine",
            "",
            ["message.eml"],
        ),
        (  # the only text is in a text part with a file name, not marked as an attachment
            b"--b\r\nContent-Type: text/plain; name=problems.txt\r\n\r\nuser unknown\r\n--b--\r\n",
            "user unknown",
            "",
            ["problems.txt"],
        ),
        (  # a text file marked as an attachment stays a file
            b"--b\r\nContent-Type: text/plain; name=a.txt\r\n"
            b"Content-Disposition: attachment\r\n\r\nfile\r\n--b--\r\n",
            "",
            "",
            ["a.txt"],
        ),
        (  # a missing closing boundary still gives the text
            b"--b\r\nContent-Type: text/plain\r\n\r\nunterminated\r\n",
            "unterminated",
            "",
            [],
        ),
    ],
)
def test_multipart_body(body: bytes, text: str, html: str, names: list[str]) -> None:
    parsed = parse(mail(*MULTIPART, body=body))
    assert (parsed.text, parsed.html) == (text, html)
    assert [attachment.filename for attachment in parsed.attachments] == names


def test_attachment_file_names() -> None:
    parsed = fixture("rfc2231.eml")
    assert [(a.filename, a.content_type, a.size) for a in parsed.attachments] == [
        ("报价单.pdf", "application/pdf", 12),  # RFC 2231 continuations
        ("发票.xlsx", "application/vnd.ms-excel", 5),  # encoded word in quotes
        ("镕.txt", "text/plain", 2),  # RFC 2231 with GBK under gb2312
        ("attachment-4.pdf", "application/pdf", 17),  # nameless
        ("eviltxt.exe", "application/octet-stream", 2),  # path and bidi override removed
    ]
    assert parsed.attachments[0].content == b"%PDF-1.4 one"


TNEF = b"\x78\x9f\x3e\x22" + bytes(range(256))


@pytest.mark.parametrize(
    ("cap", "content"),
    [(len(TNEF), TNEF), (len(TNEF) - 1, None), (0, None)],
)
def test_attachment_over_the_cap_is_recorded_without_content(
    cap: int, content: bytes | None
) -> None:
    raw = mail(
        *MULTIPART,
        body=b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--b\r\nContent-Type: application/ms-tnef\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(TNEF)
        + b"--b--\r\n",
    )
    parsed = parse(raw, max_attachment_size=cap)
    assert parsed.attachments == (
        AttachedFile("winmail.dat", "application/ms-tnef", len(TNEF), content),
    )


def test_forwarded_message_is_an_attachment_with_its_bytes() -> None:
    parsed = fixture("forwarded.eml")
    inner = (
        b"From: Original Sender <orig@example.org>\r\nTo: someone@example.com\r\n"
        b"Subject: the original\r\nMessage-ID: <inner@example.org>\r\n\r\nOriginal body."
    )
    assert parsed.attachments[0].filename == "logo.png"
    assert parsed.attachments[0].content is not None
    assert parsed.attachments[0].content.startswith(b"\x89PNG")
    assert parsed.attachments[1] == AttachedFile("message.eml", "message/rfc822", len(inner), inner)


def test_base64_message_rfc822_is_decoded() -> None:
    raw = mail(
        b"From: a@example.com",
        b"Content-Type: message/rfc822",
        b"Content-Transfer-Encoding: base64",
        body=b"U3ViamVjdDogaW5uZXINCg0KYm9keQ==\r\n",
    )
    parsed = parse(raw)
    assert parsed.attachments[0].content == b"Subject: inner\r\n\r\nbody"
    assert parsed.text == "body"


@pytest.mark.parametrize(
    ("headers", "body", "text"),
    [
        (  # a digest wrapped in a message: each message's text, in order
            (b"Content-Type: message/rfc822",),
            b'Content-Type: multipart/digest; boundary="d"\r\n\r\n'
            b"--d\r\n\r\nSubject: one\r\n\r\nfirst\r\n"
            b"--d\r\n\r\nSubject: two\r\n\r\nsecond\r\n--d--\r\n",
            "first\nsecond",
        ),
        (  # forwarded twice
            (b"Content-Type: message/rfc822",),
            b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ndeep\r\n",
            "deep\n",
        ),
        (  # a delivery report without a notice: the returned mail is not its text
            (b'Content-Type: multipart/report; report-type=delivery-status; boundary="r"',),
            b"--r\r\nContent-Type: message/delivery-status\r\n\r\n"
            b"Reporting-MTA: dns; mx.example.net\r\n\r\n"
            b"Final-Recipient: rfc822; x@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
            b"--r\r\nContent-Type: message/rfc822\r\n\r\nSubject: ours\r\n\r\nour ack\r\n"
            b"--r--\r\n",
            "",
        ),
    ],
)
def test_wrapped_messages_give_the_body(headers: tuple[bytes, ...], body: bytes, text: str) -> None:
    assert parse(mail(b"From: a@example.com", *headers, body=body)).text == text


@pytest.mark.parametrize(
    "blob",
    [
        b"\x78\x9f\x3e\x22" + bytes(range(256)),  # the signature, then garbage
        b"\x78\x9f\x3e\x22\x01\x00",  # the signature alone
        b"not tnef at all",
    ],
)
def test_unreadable_winmail_dat_stays_an_attachment(blob: bytes) -> None:
    raw = mail(
        *MULTIPART,
        body=b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--b\r\nContent-Type: application/ms-tnef\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(blob)
        + b"--b--\r\n",
    )
    parsed = parse(raw)
    assert parsed.text == "see attached"
    assert parsed.attachments == (
        AttachedFile("winmail.dat", "application/ms-tnef", len(blob), blob),
    )


@pytest.mark.parametrize(
    ("name", "bounce"),
    [
        (
            "dsn.eml",
            Bounce(
                "<MT-42.abcdef@support.example.com>",
                ("gone@example.org",),  # failed; "slow" is only delayed (dsn.read_bounce)
                "failed",
                "5.1.1",
            ),
        ),
        (
            "dsn_headers_only.eml",
            Bounce(
                "<MT-43.fedcba@support.example.com>",
                ("gone@example.org",),  # failed; "slow" is only delayed (dsn.read_bounce)
                "failed",
                "5.1.1",
            ),
        ),
        ("outlook_gb2312.eml", None),
    ],
)
def test_bounce(name: str, bounce: Bounce | None) -> None:
    assert fixture(name).bounce == bounce


@pytest.mark.parametrize(
    ("content_type", "status", "expected"),
    [
        (  # only a delayed recipient: its block is reported
            b"multipart/report; report-type=delivery-status",
            b"Final-Recipient: rfc822; x@y.org\r\nAction: delayed\r\nStatus: 4.4.7",
            Bounce(None, ("x@y.org",), "delayed", "4.4.7"),
        ),
        (  # no Final-Recipient: Original-Recipient
            b"multipart/report; report-type=delivery-status",
            b"Original-Recipient: rfc822;Orig@Y.org\r\nStatus:5.5.0",
            Bounce(None, ("orig@y.org",), "", "5.5.0"),
        ),
        (  # another report type
            b"multipart/report; report-type=feedback-report",
            b"Feedback-Type: abuse",
            None,
        ),
    ],
)
def test_bounce_fields(content_type: bytes, status: bytes, expected: Bounce | None) -> None:
    kind = b"message/delivery-status" if expected else b"message/feedback-report"
    raw = mail(
        b"From: MAILER-DAEMON@example.org",
        b"Content-Type: " + content_type + b'; boundary="r"',
        body=b"--r\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--r\r\nContent-Type: "
        + kind
        + b"\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        + status
        + b"\r\n--r--\r\n",
    )
    assert parse(raw).bounce == expected


def test_bounce_with_a_broken_boundary_is_read_from_its_text() -> None:
    raw = mail(
        b"From: MAILER-DAEMON@example.org",
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="missing"',
        body=b"Your mail failed.\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        b"Final-Recipient: rfc822; x@y.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        b"  Message-ID: <MT-9.sig@support.example.com>\r\n",
    )
    assert parse(raw).bounce == Bounce(
        "<MT-9.sig@support.example.com>", ("x@y.org",), "failed", "5.1.1"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, my account is locked.", "en"),
        ("账户被盗 please help", "zh"),
        ("您好，我的账户无法登录", "zh"),
        ("Re: [MT-12] 发票\n\nThanks, the invoice is fine now. Regards, John", "en"),
        ("请看 the invoice", "zh"),  # under 5 Han characters, but over 10 % of the letters
        ("发票有问题 " + "thanks " * 100, "zh"),  # 5 Han characters
        ("A long English mail. " * 50 + "王", "en"),
        ("日本語のメールです。よろしくお願いします。", "en"),  # Japanese is not Chinese
        ("", "en"),
    ],
)
def test_language(text: str, expected: str) -> None:
    assert language(text) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\report.pdf", "report.pdf"),
        ("evil\u202etxt.exe", "eviltxt.exe"),
        ("tab\tand\x00nul.txt", "tabandnul.txt"),
        ("..", ""),
        (" .hidden ", "hidden"),
        ("报价单.pdf", "报价单.pdf"),
        ("a" * 300 + ".pdf", "a" * 251 + ".pdf"),
    ],
)
def test_safe_filename(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


def test_defects_are_reported_once_by_class_name() -> None:
    raw = mail(
        *MULTIPART,
        body=b"no boundary line here\r\n",
    )
    parsed = parse(raw)
    assert parsed.defects == ("StartBoundaryNotFoundDefect", "MultipartInvariantViolationDefect")
    assert parsed.text == "no boundary line here\n"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b" \r\n\r\n\t",
        b"\x00\x01\x02\xff\xfe binary garbage \x89PNG",
        b"just a line of text\nand another one\n",
        b": no field name\n\nbody",
    ],
)
def test_not_a_mail_raises_parse_error(raw: bytes) -> None:
    with pytest.raises(ParseError):
        parse(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"From: a@example.com\r\nSubject: only a header",
        b"From: a@example.com\r\nContent-Type: multipart/mixed\r\n\r\nno boundary at all",
        b'From: a@example.com\r\nContent-Type: text/plain; charset="\x00bad"\r\n\r\n\xff',
        b"From: a@example.com\r\nContent-Type: text/plain; charset=base64\r\n\r\nabc",
        b"From: a@example.com\r\nContent-Transfer-Encoding: x-unknown\r\n\r\nabc",
        b'From: a@example.com\r\nContent-Type: ;;;\r\nContent-Disposition: ;="\r\n\r\nabc',
    ],
)
def test_broken_mime_still_gives_a_mail(raw: bytes) -> None:
    assert parse(raw).raw == raw


@pytest.mark.parametrize(
    ("header", "subject"),
    [
        (b"Subject: =?utf-8?Q?a=0D=0ABcc:_x@evil.example?=", "a  Bcc: x@evil.example"),
        (b"Subject: =?utf-8?B?dGFiCXZ0C251bAA=?=", "tab vt nul "),
        (b"Subject: \xe2\x80\xaeright-to-left", "\u202eright-to-left"),  # text, not a control
    ],
)
def test_decoded_headers_hold_no_control_characters(header: bytes, subject: str) -> None:
    parsed = parse(mail(b"From: a@example.com", header))
    assert parsed.subject == subject
    assert parsed.header("subject") == (subject,)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (mail(b"From: a@example.com", b"Message-ID: <peek@example.com>"), "<peek@example.com>"),
        (b"Message-Id:\r\n <folded@example.com>\r\n\r\n", "<folded@example.com>"),
        (b"Subject: none\r\n\r\nMessage-ID: <in-body@example.com>\r\n", ""),
        (b"\x00\xff garbage", ""),
    ],
)
def test_peek_message_id_reads_the_head_alone(raw: bytes, expected: str) -> None:
    assert peek_message_id(raw) == expected
