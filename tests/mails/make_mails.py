"""Write the .eml fixtures of tests/test_mail.py (run: python tests/mails/make_mails.py).

The mails are written byte by byte so that the charsets are exactly what real senders
send (GBK text labelled gb2312, Big5 with Microsoft and HKSCS extensions, raw 8-bit
headers), which an editor or the email package would silently "fix". The output is
committed; rerunning the script must not change it.
"""

from __future__ import annotations

import base64
import quopri
import struct
from pathlib import Path
from urllib.parse import quote_from_bytes

import compressed_rtf  # type: ignore[import-untyped]

HERE = Path(__file__).resolve().parent


def b64(data: bytes) -> bytes:
    """Base64 in 76-column lines, as mail clients write it."""
    encoded = base64.b64encode(data)
    return b"\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def word(text: str, charset: str, codec: str | None = None) -> bytes:
    """An RFC 2047 B encoded word whose label is ``charset`` and bytes are ``codec``."""
    data = text.encode(codec or charset)
    return b"=?" + charset.encode() + b"?B?" + base64.b64encode(data) + b"?="


def crlf(*lines: bytes) -> bytes:
    """Join lines with CRLF, as mail travels."""
    return b"\r\n".join(lines) + b"\r\n"


def outlook_gb2312() -> bytes:
    """Outlook: GBK text (镕 and 堃 are not in GB2312) labelled gb2312, plain + HTML."""
    plain = "您好，\r\n朱镕基和王堃的账户无法登录。\r\n谢谢\r\n".encode("gbk")
    html = "<html><body><p>您好，</p><p>朱镕基和王堃的账户无法登录。</p></body></html>"
    return crlf(
        b"From: " + word("王堃", "gb2312", "gbk") + b" <WangKun@Example.COM>",
        b'To: support@example.com, "Li, Lei" <li.lei@example.com>',
        b"Cc: " + word("客服", "gb2312") + b" <CC@example.com>",
        b"Subject: " + word("关于朱镕基的问题", "gb2312", "gbk"),
        b"Date: Tue, 3 Mar 2026 10:15:00 +0800",
        b"Message-ID: <outlook-1@example.com>",
        b"MIME-Version: 1.0",
        b'Content-Type: multipart/alternative; boundary="----=_NextPart_000"',
        b"X-Mailer: Microsoft Outlook 16.0",
        b"",
        b"------=_NextPart_000",
        b'Content-Type: text/plain; charset="gb2312"',
        b"Content-Transfer-Encoding: base64",
        b"",
        b64(plain),
        b"------=_NextPart_000",
        b'Content-Type: text/html; charset="gb2312"',
        b"Content-Transfer-Encoding: quoted-printable",
        b"",
        quopri.encodestring(html.encode("gbk")),
        b"------=_NextPart_000--",
    )


def single(charset: bytes, subject: bytes, body: bytes, cte: bytes = b"8bit") -> bytes:
    """A one-part text/plain mail with an 8-bit body."""
    return crlf(
        b"From: sender@example.com",
        b"To: support@example.com",
        b"Subject: " + subject,
        b"Date: Wed, 4 Mar 2026 09:00:00 +0800",
        b"Message-ID: <single-" + charset + b"@example.com>",
        b"MIME-Version: 1.0",
        b"Content-Type: text/plain; charset=" + charset,
        b"Content-Transfer-Encoding: " + cte,
        b"",
        body,
    )


def rfc2231() -> bytes:
    """Attachment names: RFC 2231 continuations, encoded words, GBK, none, hostile."""
    part1 = quote_from_bytes("报价".encode()), quote_from_bytes("单.pdf".encode())
    gbk_name = quote_from_bytes("镕.txt".encode("gbk"))
    return crlf(
        b"From: sender@example.com",
        b"To: support@example.com",
        b"Subject: attachments",
        b"Message-ID: <rfc2231@example.com>",
        b"MIME-Version: 1.0",
        b'Content-Type: multipart/mixed; boundary="b1"',
        b"",
        b"--b1",
        b"Content-Type: text/plain; charset=utf-8",
        b"",
        b"See the files.",
        b"--b1",
        b"Content-Type: application/pdf",
        b"Content-Disposition: attachment;",
        b" filename*0*=utf-8''" + part1[0].encode() + b";",
        b" filename*1*=" + part1[1].encode(),
        b"Content-Transfer-Encoding: base64",
        b"",
        b64(b"%PDF-1.4 one"),
        b"--b1",
        b"Content-Type: application/vnd.ms-excel",
        b'Content-Disposition: attachment; filename="' + word("发票.xlsx", "utf-8") + b'"',
        b"Content-Transfer-Encoding: base64",
        b"",
        b64(b"excel"),
        b"--b1",
        b"Content-Type: text/plain; charset=gb2312",
        b"Content-Disposition: attachment; filename*=gb2312''" + gbk_name.encode(),
        b"",
        "镕".encode("gbk"),
        b"--b1",
        b"Content-Type: application/pdf",
        b"Content-Transfer-Encoding: base64",
        b"",
        b64(b"%PDF-1.4 nameless"),
        b"--b1",
        b"Content-Type: application/octet-stream",
        b'Content-Disposition: attachment; filename="..\\\\..\\\\evil\xe2\x80\xaetxt.exe"',
        b"",
        b"MZ",
        b"--b1--",
    )


def html_only() -> bytes:
    """An HTML-only mail, as phones and web mailers send it."""
    html = (
        "<html><head><style>p {color: red}</style></head><body>"
        "<p>Hello team,</p><p>The invoice is <b>wrong</b>.<br>Please fix it.</p>"
        "<ul><li>one</li><li>two</li></ul></body></html>"
    )
    return crlf(
        b"From: Phone User <phone@example.com>",
        b"To: support@example.com",
        b"Subject: invoice",
        b"Message-ID: <html-only@example.com>",
        b"MIME-Version: 1.0",
        b"Content-Type: text/html; charset=utf-8",
        b"Content-Transfer-Encoding: quoted-printable",
        b"",
        quopri.encodestring(html.encode()),
    )


INNER = crlf(
    b"From: Original Sender <orig@example.org>",
    b"To: someone@example.com",
    b"Subject: the original",
    b"Message-ID: <inner@example.org>",
    b"",
    b"Original body.",
)


def forwarded() -> bytes:
    """A mail forwarding another one as message/rfc822, plus an inline image."""
    return crlf(
        b"From: fwd@example.com",
        b"To: support@example.com",
        b"Subject: Fwd: the original",
        b"Message-ID: <forwarded@example.com>",
        b"MIME-Version: 1.0",
        b'Content-Type: multipart/mixed; boundary="outer"',
        b"",
        b"--outer",
        b"Content-Type: text/plain; charset=us-ascii",
        b"",
        b"See below.",
        b"--outer",
        b"Content-Type: image/png; name=logo.png",
        b"Content-Disposition: inline; filename=logo.png",
        b"Content-Transfer-Encoding: base64",
        b"",
        b64(b"\x89PNG\r\n\x1a\n" + bytes(range(64))),
        b"--outer",
        b"Content-Type: message/rfc822",
        b"",
        INNER.rstrip(b"\r\n"),
        b"--outer--",
    )


def dsn() -> bytes:
    """An RFC 3464 bounce of one of our mails: one recipient delayed, one failed."""
    return crlf(
        b"From: Mail Delivery System <MAILER-DAEMON@mx.example.net>",
        b"To: support@example.com",
        b"Subject: Undelivered Mail Returned to Sender",
        b"Message-ID: <dsn-1@mx.example.net>",
        b"Auto-Submitted: auto-replied",
        b"MIME-Version: 1.0",
        b"Content-Type: multipart/report; report-type=delivery-status;",
        b'\tboundary="dsn"',
        b"",
        b"--dsn",
        b"Content-Type: text/plain; charset=us-ascii",
        b"",
        b"I'm sorry to have to inform you that your message could not be delivered.",
        b"--dsn",
        b"Content-Type: message/delivery-status",
        b"",
        b"Reporting-MTA: dns; mx.example.net",
        b"Arrival-Date: Thu, 5 Mar 2026 10:00:00 +0000",
        b"",
        b"Final-Recipient: rfc822; Slow@Example.org",
        b"Action: delayed",
        b"Status: 4.4.1",
        b"",
        b"Final-Recipient: rfc822; <Gone@Example.org>",
        b"Original-Recipient: rfc822; gone@example.org",
        b"Action: failed",
        b"Status: 5.1.1 (user unknown)",
        b"Diagnostic-Code: smtp; 550 5.1.1 user unknown",
        b"",
        b"--dsn",
        b"Content-Type: message/rfc822",
        b"",
        b"From: support@example.com",
        b"To: gone@example.org",
        b"Subject: [MT-42] Your request",
        b"Message-ID: <MT-42.abcdef@support.example.com>",
        b"",
        b"Hello.",
        b"--dsn--",
    )


def dsn_headers_only() -> bytes:
    """A bounce returning only the headers (text/rfc822-headers), LF line endings."""
    mail = dsn().replace(b"\r\n", b"\n")
    mail = mail.replace(b"Content-Type: message/rfc822\n", b"Content-Type: text/rfc822-headers\n")
    return mail.replace(b"Message-ID: <MT-42.abcdef", b"Message-ID:\n <MT-43.fedcba")


def groupwise_forward() -> bytes:
    """GroupWise forwards a mail as the whole of a message/rfc822 mail: no text of its own."""
    return crlf(
        b"From: Novell User <nuser@example.org>",
        b"To: support@example.com",
        b"Subject: Fwd: printer on floor 3",
        b"Date: Tue, 3 Mar 2026 09:00:00 +0100",
        b"Message-ID: <gw-1@example.org>",
        b"MIME-Version: 1.0",
        b"X-Mailer: GroupWise Internet Agent 18.2.1",
        b"Content-Type: message/rfc822",
        b"",
        b"From: Original Sender <orig@example.org>",
        b"To: nuser@example.org",
        b"Subject: printer on floor 3",
        b"Message-ID: <inner-gw@example.org>",
        b"MIME-Version: 1.0",
        b'Content-Type: multipart/alternative; boundary="alt"',
        b"",
        b"--alt",
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Transfer-Encoding: 8bit",
        b"",
        "The printer on floor 3 jams on every page. Café is closed too.".encode(),
        b"--alt",
        b"Content-Type: text/html; charset=utf-8",
        b"",
        b"<p>The printer on floor 3 jams on every page.</p>",
        b"--alt--",
    )


def blank_plain_html() -> bytes:
    """A blank text/plain alternative beside an HTML part that has the text."""
    return crlf(
        b"From: webmail@example.com",
        b"To: support@example.com",
        b"Subject: invoice",
        b"Message-ID: <blank-plain@example.com>",
        b"MIME-Version: 1.0",
        b'Content-Type: multipart/alternative; boundary="alt"',
        b"",
        b"--alt",
        b"Content-Type: text/plain; charset=utf-8",
        b"",
        b" ",
        b"",
        b"--alt",
        b"Content-Type: text/html; charset=utf-8",
        b"",
        "<html><body><p>发票金额不对</p><p>Please fix it.</p></body></html>".encode(),
        b"--alt--",
    )


def tnef_object(level: int, attribute: int, data: bytes) -> bytes:
    """One TNEF attribute: level, attribute id (type in the high word), length, data,
    checksum (MS-OXTNEF 2.1.3)."""
    checksum = sum(data) & 0xFFFF
    return struct.pack("<BII", level, attribute, len(data)) + data + struct.pack("<H", checksum)


def mapi_binary(tag: int, data: bytes) -> bytes:
    """One MAPI property of type PtypBinary (MS-OXTNEF 2.1.3.4): tag, count, length, data
    padded to four bytes."""
    padded = data + b"\x00" * (-len(data) % 4)
    return struct.pack("<III", tag, 1, len(data)) + padded


def tnef_blob(rtf: bytes | None, text: bytes | None, files: list[tuple[bytes, bytes]]) -> bytes:
    """A winmail.dat as Outlook writes it: version, OEM code page 936, message class, the
    body (plain text, or compressed RTF in the MAPI properties), then each file."""
    blob = struct.pack("<IH", 0x223E9F78, 0x0001)
    blob += tnef_object(1, 0x00089006, struct.pack("<I", 0x00010000))  # attTnefVersion
    blob += tnef_object(1, 0x00069007, struct.pack("<II", 936, 0))  # attOemCodepage
    blob += tnef_object(1, 0x00078008, b"IPM.Microsoft Mail.Note\x00")  # attMessageClass
    if text is not None:
        blob += tnef_object(1, 0x0002800C, text)  # attBody
    if rtf is not None:  # attMAPIProps: PidTagRtfCompressed
        props = struct.pack("<I", 1) + mapi_binary(0x10090102, compressed_rtf.compress(rtf))
        blob += tnef_object(1, 0x00069003, props)
    for name, content in files:
        blob += tnef_object(2, 0x00069002, bytes(14))  # attAttachRendData
        blob += tnef_object(2, 0x00018010, name + b"\x00")  # attAttachTitle
        blob += tnef_object(2, 0x0006800F, content)  # attAttachData
    return blob


RTF_BODY = (
    b"{\\rtf1\\ansi\\ansicpg936\\deff0{\\fonttbl{\\f0\\fnil\\fcharset134 SimSun;}}\r\n"
    b"\\pard\\f0\\fs20 \\'c4\\'fa\\'ba\\'c3\\'a3\\'ac\\par\r\n"
    b"The quote is attached. \\'b1\\'a8\\'bc\\'db\\'b5\\'a5\\'d4\\'da\\'b8\\'bd\\'bc\\'fe"
    b"\\'a1\\'a3\\par\r\n}"
)


def winmail(text: bool) -> bytes:
    """Outlook with rich text to a non-Exchange address: winmail.dat carries the body
    (RTF, code page 936) and the files; with ``text``, a plain body part comes first."""
    files = [("报价单.txt".encode("gbk"), "单价 100 元\r\n".encode("gbk")), (b"logo.png", PNG)]
    blob = tnef_blob(RTF_BODY, None, files)
    plain = [b"--mix", b"Content-Type: text/plain; charset=us-ascii", b"", b"See the quote."]
    return crlf(
        b"From: Outlook User <outlook@example.com>",
        b"To: support@example.com",
        b"Subject: quote",
        b"Message-ID: <winmail-" + (b"text" if text else b"rtf") + b"@example.com>",
        b"MIME-Version: 1.0",
        b'Content-Type: multipart/mixed; boundary="mix"',
        b"",
        *(plain if text else []),
        b"--mix",
        b'Content-Type: application/ms-tnef; name="winmail.dat"',
        b'Content-Disposition: attachment; filename="winmail.dat"',
        b"Content-Transfer-Encoding: base64",
        b"",
        b64(blob),
        b"--mix--",
    )


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(32))


def koi8_raw_subject() -> bytes:
    """A Russian subject in raw KOI8-R bytes, and no Content-Type at all (RT saw these)."""
    return crlf(
        b"From: " + "Иван Петров".encode("koi8-r") + b" <ivan@example.ru>",
        b"To: support@example.com",
        b"Subject: " + "тест тест".encode("koi8-r"),
        b"Message-ID: <koi8-raw@example.ru>",
        b"",
        b"test",
    )


FIXTURES = {
    "outlook_gb2312.eml": outlook_gb2312,
    "big5_microsoft.eml": lambda: single(
        b"big5", word("碁恒", "big5", "cp950"), "圍棋的碁，恒久的恒\r\n".encode("cp950")
    ),
    "big5_hkscs.eml": lambda: single(b"big5", b"hkscs", "係咪㗎？\r\n".encode("big5hkscs")),
    "ks_c_5601.eml": lambda: single(
        b"ks_c_5601-1987",
        word("똠방각하", "ks_c_5601-1987", "cp949"),
        "똠방각하\r\n".encode("cp949"),
    ),
    "utf7.eml": lambda: single(
        b"unicode-1-1-utf-7", b"utf-7", "Hello 世界\r\n".encode("utf-7"), b"7bit"
    ),
    "unknown_charset.eml": lambda: single(
        b"x-unknown",
        b"unknown",
        (
            "您好，我们公司上个月购买的服务器一直无法正常启动，"
            "技术人员检查后认为是主板的问题。请尽快安排工程师上门维修，"
            "并告知预计的到达时间。谢谢！\r\n"
        ).encode("gbk"),
    ),
    "rfc2231.eml": rfc2231,
    "html_only.eml": html_only,
    "forwarded.eml": forwarded,
    "dsn.eml": dsn,
    "dsn_headers_only.eml": dsn_headers_only,
    "groupwise_forward.eml": groupwise_forward,
    "blank_plain_html.eml": blank_plain_html,
    "winmail_rtf.eml": lambda: winmail(text=False),
    "winmail_text.eml": lambda: winmail(text=True),
    "koi8_raw_subject.eml": koi8_raw_subject,
}


def main() -> None:
    """Write every fixture next to this script."""
    for name, build in FIXTURES.items():
        (HERE / name).write_bytes(build())


if __name__ == "__main__":
    main()
