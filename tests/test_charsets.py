"""Charset aliases, body and header decoding, RFC 2047 words and RFC 2231 parameters."""

from __future__ import annotations

import base64

import pytest

from mailticket.parse.charsets import (
    Decoded,
    codecs_for,
    decode_8bit,
    decode_body,
    decode_header,
    header_hint,
    hide_words,
    html_charset,
    is_legacy,
    show_words,
    unfold,
    word_charsets,
)

GBK_ONLY = "朱镕基和王堃"  # 镕 and 堃 are in GBK, not in GB2312


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("gb2312", ("gb18030",)),
        ("GBK", ("gb18030",)),
        ('"x-gbk"', ("gb18030",)),
        ("cp936", ("gb18030",)),
        ("euc-cn", ("gb18030",)),
        ("big5", ("cp950", "big5hkscs")),
        ("Big-5", ("cp950", "big5hkscs")),
        ("x-big5", ("cp950", "big5hkscs")),
        ("ks_c_5601-1987", ("cp949",)),
        ("ks_c_5601", ("cp949",)),
        ("euc-kr", ("cp949",)),
        ("iso-8859-8-i", ("iso-8859-8",)),
        ("unicode-1-1-utf-7", ("utf-7",)),
        ("uft-8", ("utf-8",)),
        ("utf8", ("utf-8",)),
        ("iso-8859-1", ("cp1252", "latin-1")),
        ("koi8-r", ("koi8-r",)),
        ("windows-1251", ("cp1251",)),
        ("x-unknown", ()),
        ("", ()),
        (None, ()),
        ("x-ias-german", ()),
        ("base64", ()),  # a Python codec, but not a text encoding
    ],
)
def test_codecs_for(label: str | None, expected: tuple[str, ...]) -> None:
    assert codecs_for(label) == expected


@pytest.mark.parametrize(
    ("label", "expected"),
    [("gb2312", True), ("iso-8859-1", True), ("utf-8", False), ("us-ascii", False), ("x", False)],
)
def test_is_legacy(label: str, expected: bool) -> None:
    assert is_legacy(label) is expected


@pytest.mark.parametrize(
    ("data", "charset", "expected"),
    [
        (GBK_ONLY.encode("gbk"), "gb2312", Decoded(GBK_ONLY)),
        (GBK_ONLY.encode("gbk"), "x-gbk", Decoded(GBK_ONLY)),
        ("碁恒".encode("cp950"), "big5", Decoded("碁恒")),  # Microsoft extensions
        ("係咪㗎".encode("big5hkscs"), "big5", Decoded("係咪㗎")),  # Hong Kong characters
        ("똠방각하".encode("cp949"), "ks_c_5601-1987", Decoded("똠방각하")),
        ("똠방각하".encode("cp949"), "euc-kr", Decoded("똠방각하")),
        ("Hello 世界".encode("utf-7"), "unicode-1-1-utf-7", Decoded("Hello 世界")),
        ("née".encode(), "uft-8", Decoded("née")),
        ("שלום".encode("iso-8859-8"), "iso-8859-8-i", Decoded("שלום")),
        (b"\x93quoted\x94", "iso-8859-1", Decoded("“quoted”")),  # really windows-1252
        ("naïve".encode(), "us-ascii", Decoded("naïve")),  # mislabelled UTF-8
        ("naïve".encode(), "x-unknown", Decoded("naïve")),
        ("naïve".encode(), None, Decoded("naïve")),
        (b"ok", "no-such-charset", Decoded("ok")),
        (b"caf\xc3", "utf-8", Decoded("caf\ufffd", lossy=True)),  # truncated: replaced
        (b"\x80\xff", "gb2312", Decoded("\ufffd\ufffd", lossy=True)),
    ],
)
def test_decode_body(data: bytes, charset: str | None, expected: Decoded) -> None:
    assert decode_body(data, charset) == expected


def test_decode_body_detects_an_unlabelled_legacy_charset() -> None:
    text = (
        "您好，我们公司上个月购买的服务器一直无法正常启动，技术人员检查后认为是主板的问题。"
        "请尽快安排工程师上门维修，并告知预计的到达时间。谢谢！"
    )
    assert decode_body(text.encode("gbk"), "x-unknown") == Decoded(text)


@pytest.mark.parametrize(
    ("data", "charset", "hint", "expected"),
    [
        ("报价单".encode(), None, None, Decoded("报价单")),
        (GBK_ONLY.encode("gbk"), None, None, Decoded(GBK_ONLY)),  # not UTF-8: GB18030
        ("Verão".encode("cp1252"), None, "windows-1252", Decoded("Verão")),  # the mail's charset
        ("Verão".encode("cp1252"), "us-ascii", "iso-8859-1", Decoded("Verão")),
        (GBK_ONLY.encode("gbk"), "gb2312", None, Decoded(GBK_ONLY)),
        (b"\xff", None, None, Decoded("\ufffd", lossy=True)),
    ],
)
def test_decode_8bit(data: bytes, charset: str | None, hint: str | None, expected: Decoded) -> None:
    assert decode_8bit(data, charset, hint) == expected


def escaped(data: bytes) -> str:
    """A header value as the email package stores raw 8-bit bytes (surrogate escapes)."""
    return data.decode("ascii", "surrogateescape")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("plain ascii", "plain ascii"),
        ("=?gb2312?B?udjT2tbs6Ua7+bXEzsrM4g==?=", "关于朱镕基的问题"),  # GBK under gb2312
        ("=?GB2312?b?udjT2tbs6Ua7+bXEzsrM4g==?=", "关于朱镕基的问题"),
        ("=?utf-8?Q?caf=C3=A9_au_lait?=", "café au lait"),
        ("=?utf-8?B?5Lit?= =?utf-8?B?5paH?=", "中文"),  # space between words dropped
        ("=?utf-8?B?5Lit?==?utf-8?B?5paH?=", "中文"),  # no space between words
        ("=?utf-8?B?5Lit5g==?=\r\n =?utf-8?B?loc=?=", "中文"),  # a character split across words
        ("=?utf-8?B?5Lit5paH?= =?gb2312?B?6UY=?=", "中文镕"),  # two charsets in one header
        ("=?utf-8?B?5Lit5paH===?=", "中文"),  # bad padding
        ("=?utf-8?X?abc?=", "=?utf-8?X?abc?="),  # unknown encoding: literal
        ("Re: =?utf-8?Q?caf=C3=A9?= now", "Re: café now"),
        ("=?iso-8859-1*fr?Q?caf=E9?=", "café"),  # RFC 2231 language suffix
        ("=?ks_c_5601-1987?B?jGO55g==?=", "똠방"),
        ("=?x-unknown?B?5Lit5paH?=", "中文"),
        ("=?utf-8?B?5Lit5paH?", "=?utf-8?B?5Lit5paH?"),  # unterminated: literal
        ("a\r\n\tfolded\r\n  header", "a folded  header"),
        (escaped("报价单 2026".encode()), "报价单 2026"),  # raw UTF-8
        (escaped("王堃 <wk@example.cn>".encode("gbk")), "王堃 <wk@example.cn>"),  # raw GBK
        (escaped(b"\xff\xfe"), "\ufffd\ufffd"),
    ],
)
def test_decode_header(raw: str, expected: str) -> None:
    assert decode_header(raw).text == expected


@pytest.mark.parametrize(
    ("text", "codec", "hint", "lossy"),
    [
        # raw 8-bit headers in other scripts are not Chinese (GB18030 reads most byte pairs)
        ("тест тест", "koi8-r", None, True),  # short: a guess, flagged
        ("тест тест", "koi8-r", "koi8-r", False),  # the mail's charset agrees
        ("тест тест", "koi8-r", "gb2312", True),  # the hint is a hint, not a verdict
        ("Проблема с доступом к серверу", "koi8-r", None, False),  # long: clear evidence
        ("Ação rápida", "iso-8859-1", None, True),
        ("Ação rápida", "iso-8859-1", "iso-8859-1", False),
        ("Ação rápida", "iso-8859-1", "gb2312", True),
        ("Ελληνικά", "iso-8859-7", None, True),
        ("Ελληνικά", "iso-8859-7", "iso-8859-7", False),
        ("Привет, как дела", "windows-1251", None, True),
        ("Привет, как дела", "windows-1251", "windows-1251", False),
        ("Jörg Schäfer", "iso-8859-1", None, False),
        ("お問い合わせ", "shift_jis", None, False),
        ("お問い合わせ", "shift_jis", "shift_jis", False),
        ("문의 드립니다", "euc-kr", None, False),
        ("문의 드립니다", "euc-kr", "euc-kr", False),
        # Chinese stays Chinese, with or without the hint
        ("关于服务器的问题", "gbk", None, False),
        ("关于服务器的问题", "gbk", "gb2312", False),
        ("关于服务器的问题", "gbk", "iso-8859-1", True),  # against the mail's charset
        (GBK_ONLY, "gbk", None, False),  # rare characters, but nothing else reads better
        ("王堃 <wk@example.cn>", "gbk", None, True),  # two characters: a guess
        ("王堃 <wk@example.cn>", "gbk", "gb2312", False),
        ("帳號無法登入", "big5", None, False),
        ("帳號無法登入", "big5", "big5", False),
        ("报价单 2026", "utf-8", None, False),  # valid UTF-8 is UTF-8
        ("报价单 2026", "utf-8", "gb2312", False),
    ],
)
def test_raw_8bit_header_is_read_by_evidence(
    text: str, codec: str, hint: str | None, lossy: bool
) -> None:
    assert decode_header(escaped(text.encode(codec)), hint) == Decoded(text, lossy)


def b_word(label: str, text: str, codec: str) -> str:
    return f"=?{label}?B?{base64.b64encode(text.encode(codec)).decode()}?="


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # the declared charset is wrong: another reading is clearly the text (flagged)
        (b_word("iso-8859-1", "café au lait", "utf-8"), Decoded("café au lait", True)),
        ("=?iso-8859-1?Q?Caf=C3=A9?=", Decoded("Café", True)),
        (b_word("iso-8859-1", "关于服务器的问题", "gbk"), Decoded("关于服务器的问题", True)),
        (b_word("utf-8", "关于服务器的问题", "gbk"), Decoded("关于服务器的问题", True)),
        (b_word("gb2312", "café au lait", "utf-8"), Decoded("café au lait", True)),
        (
            b_word("iso-8859-1", "Проблема с доступом", "koi8-r"),
            Decoded("Проблема с доступом", True),
        ),
        (
            b_word("us-ascii", "关于服务器的问题", "gbk"),
            Decoded("关于服务器的问题"),
        ),  # says nothing
        # the declared charset is right, however odd the text: it stays
        ("=?iso-8859-1?Q?Caf=E9?=", Decoded("Café")),
        ("=?ISO-8859-15?Q?test_=E4=F6=FC=DF=C4=D6=DC=DF=A4?=", Decoded("test äöüßÄÖÜß€")),
        (b_word("koi8-r", "тест тест", "koi8-r"), Decoded("тест тест")),
        (b_word("gb2312", GBK_ONLY, "gbk"), Decoded(GBK_ONLY)),
        ("=?gb2312?B?6UY=?=", Decoded("镕")),  # one rare character
        ("=?ks_c_5601-1987?B?jGO55g==?=", Decoded("똠방")),
        (b_word("big5", "係咪㗎", "big5hkscs"), Decoded("係咪㗎")),
    ],
)
def test_encoded_word_with_a_wrong_charset(raw: str, expected: Decoded) -> None:
    assert decode_header(raw) == expected


KOI8_SUBJECT = escaped("тест тест".encode("koi8-r"))
KOI8_FROM = escaped("Иван Петров <ivan@example.ru>".encode("koi8-r"))


@pytest.mark.parametrize(
    ("values", "hint", "expected"),
    [
        ([KOI8_SUBJECT, KOI8_FROM, "ascii"], None, "koi8-r"),  # together: clear evidence
        ([KOI8_SUBJECT, KOI8_FROM], "gb2312", "koi8-r"),  # the body's charset is not theirs
        ([KOI8_SUBJECT], None, None),  # alone: too short to say
        ([escaped("关于服务器的问题".encode("gbk"))], "gb2312", "gb2312"),
        ([escaped("报价单".encode()), "=?gb2312?B?6UY=?=", "plain"], "gb2312", "gb2312"),
        (["plain", "ascii"], None, None),
    ],
)
def test_header_hint_judges_all_raw_headers_at_once(
    values: list[str], hint: str | None, expected: str | None
) -> None:
    assert header_hint(values, hint) == expected


def test_a_mails_headers_read_with_its_header_hint_are_not_guesses() -> None:
    hint = header_hint([KOI8_SUBJECT, KOI8_FROM], None)
    assert decode_header(KOI8_SUBJECT, hint) == Decoded("тест тест")
    assert decode_header(KOI8_SUBJECT) == Decoded("тест тест", lossy=True)


def test_decode_header_flags_replacement() -> None:
    assert decode_header(escaped(b"x \xff")) == Decoded("x \ufffd", lossy=True)


def test_decode_header_can_keep_encoded_words_for_address_lists() -> None:
    raw = "=?utf-8?Q?Doe=2C_John?= <j@example.com>, " + escaped("Håvard".encode()) + " <h@x>"
    assert (
        decode_header(raw, words=False).text
        == "=?utf-8?Q?Doe=2C_John?= <j@example.com>, Håvard <h@x>"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("a\r\n b", "a b"), ("a\n\tb", "a b"), (" padded \r\n", "padded"), ("a\rb", "ab")],
)
def test_unfold(raw: str, expected: str) -> None:
    assert unfold(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("=?gb2312?B?zfWI0g==?= <wk@x.cn>, =?UTF-8*en?Q?a?=", ["gb2312", "UTF-8"]),
        ("no words", []),
    ],
)
def test_word_charsets(raw: str, expected: list[str]) -> None:
    assert word_charsets(raw) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'<meta http-equiv="Content-Type" content="text/html; charset=gb2312">', "gb2312"),
        (b"<META CHARSET='Big5'>", "Big5"),
        (b"<p>charset=utf-8 in text, not in a meta tag</p>", None),
    ],
)
def test_html_charset(data: bytes, expected: str | None) -> None:
    assert html_charset(data) == expected


def test_hide_words_keeps_encoded_words_out_of_address_syntax() -> None:
    raw = "=?utf-8?Q?a@b.c_<a@b.c>?= <real@x.org>, =?utf-8?B?5Lit?= <b@y.org>"
    hidden, words = hide_words(raw)
    assert "@b.c" not in hidden
    assert hidden.count("<") == 2
    assert show_words(hidden, words) == raw
