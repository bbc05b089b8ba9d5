"""Content-Type and Content-Disposition parameters: RFC 2231, quoted words, 8-bit bytes."""

from __future__ import annotations

import pytest

from mailticket.parse.mime_params import header_params


def escaped(data: bytes) -> str:
    """A header value as the email package stores raw 8-bit bytes (surrogate escapes)."""
    return data.decode("ascii", "surrogateescape")


@pytest.mark.parametrize(
    ("raw", "value", "name", "expected"),
    [
        ('text/plain; charset="gb2312"', "text/plain", "charset", "gb2312"),
        ("Text/HTML;CHARSET=UTF-8", "text/html", "charset", "UTF-8"),
        ('attachment; filename="a;b.pdf"', "attachment", "filename", "a;b.pdf"),
        ('attachment; filename="say \\"hi\\".txt"', "attachment", "filename", 'say "hi".txt'),
        (
            "attachment; filename*=utf-8''%E6%8A%A5%E4%BB%B7.pdf",
            "attachment",
            "filename",
            "报价.pdf",
        ),
        (
            "attachment; filename*0*=utf-8''%E6%8A%A5; filename*1*=%E4%BB%B7; filename*2=.pdf",
            "attachment",
            "filename",
            "报价.pdf",
        ),
        (
            "attachment; filename*1*=%E4%BB%B7.pdf; filename*0*=utf-8'zh'%E6%8A%A5",
            "attachment",
            "filename",
            "报价.pdf",
        ),  # sections out of order
        ("attachment; filename*=gb2312''%E9%46.txt", "attachment", "filename", "镕.txt"),
        (
            'attachment; filename="=?utf-8?B?5Y+R56WoLnhsc3g=?="',
            "attachment",
            "filename",
            "发票.xlsx",
        ),
        (
            'attachment; filename="=?gb2312?B?6UYudHh0?="',
            "attachment",
            "filename",
            "镕.txt",
        ),
        (
            "attachment; filename=\"old.pdf\"; filename*=utf-8''new.pdf",
            "attachment",
            "filename",
            "new.pdf",
        ),  # RFC 2231 wins
        (
            'attachment; filename="' + escaped("报价.pdf".encode()) + '"',
            "attachment",
            "filename",
            "报价.pdf",
        ),
        (
            "inline;\r\n filename*0*=utf-8''%E6%8A%A5;\r\n filename*1=.pdf",
            "inline",
            "filename",
            "报.pdf",
        ),
        (
            'attachment; filename="C:\\docs\\report.pdf"',
            "attachment",
            "filename",
            "C:\\docs\\report.pdf",
        ),
    ],
)
def test_header_params(raw: str, value: str, name: str, expected: str) -> None:
    got_value, params = header_params(raw)
    assert (got_value, params[name].text) == (value, expected)


@pytest.mark.parametrize(
    "raw",
    ["", ";;;", "text/plain; =x; novalue; charset", 'attachment; filename="unterminated'],
)
def test_header_params_tolerates_junk(raw: str) -> None:
    value, params = header_params(raw)
    assert value == raw.split(";")[0].strip().lower()
    assert "charset" not in params
