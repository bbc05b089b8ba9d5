"""The new text of a reply: quoted history, our own notification and signature cut away (pure).

mail-parser-reply knows where the history starts in many clients and languages: Gmail's and
Apple Mail's ``On … wrote:``, Outlook's ``From:``/``Sent:`` block, ``-----Original
Message-----``. What it lacks (the Chinese clients' forms, Thunderbird's other attributions,
the line of dashes above our notification's text) is registered as one more language of its
table. Its splitting is not used: it strips the indentation of every line (agents paste logs
and code), and returns the quoted part when nothing was written above it. So its compiled
header pattern finds the candidate lines, and this module cuts:

1. at the first header that is not followed by ``>``-quoted lines, everything from it on
   (Outlook and the Chinese clients quote without ``>``);
2. at a signature separator (``-- ``), everything from it on;
3. the ``>``-quoted blocks at the top and at the bottom, with their attribution line; quoted
   lines between new paragraphs stay: they are what an inline answer answers.
"""

from __future__ import annotations

import re
import textwrap
from bisect import bisect_left
from collections import deque
from typing import Final

from lxml import etree, html
from mailparser_reply.constants import MAIL_LANGUAGES
from mailparser_reply.parser import EmailMessage

_EXTENSION: Final = "mailticket"  # our entry in the library's language table
_QUOTED: Final = r"(?:> ?)*"
_ZH_FROM: Final = r"发件人|發件人|寄件者"
_ZH_FIELDS: Final = (
    r"发送时间|發送時間|发件时间|寄件日期|日期|时间|收件人|收件者|抄送|副本|主题|主旨"
)
_SEPARATORS: Final = r"原始邮件|原始郵件|邮件原件|郵件原件|回复的原邮件|回覆的原郵件|Replied Message|Original Message"

MAIL_LANGUAGES.setdefault(
    _EXTENSION,
    {
        "wrote_header": [
            # Gmail, Apple Mail, Thunderbird and NetEase in Chinese:
            # "张三 <a@b.cn> 于2026年1月5日周一 10:00写道：", "在 2026/1/5 10:00, 张三 写道:"
            rf"^({_QUOTED}[^\n>][^\n]{{0,300}}(?:写道|寫道)\s*[:：])$",
            # Thunderbird's "X wrote on <date>:"
            rf"^({_QUOTED}[^\n>][^\n]{{0,200}}\swrote on\s[^\n]{{1,100}}:)$",
        ],
        "from_header": [
            # Outlook, Foxmail, QQ Mail in Chinese: a block starting "发件人：" (full-width
            # or ASCII colon) and one more field; requiring the sender line first keeps
            # "时间：…" and "主题：…" lines of ordinary text safe.
            rf"^({_QUOTED}[* ]*(?:{_ZH_FROM})\s*[:：][^\n]*(?:\n{_QUOTED}[* ]*(?:{_ZH_FIELDS})\s*[:：][^\n]*){{1,}})",
            # NetEase Mail Master's table: "| 发件人 | 张三<a@163.com> |"
            rf"^({_QUOTED}\|\s*(?:{_ZH_FROM}|From)\s*\|[^\n]*)",
            # "------------------ 原始邮件 ------------------" (QQ Mail's plain text keeps
            # the "&nbsp;" of its HTML), "-----邮件原件-----"
            rf"^({_QUOTED}-{{2,}}(?:\s|&nbsp;)*(?:{_SEPARATORS})(?:\s|&nbsp;)*-{{2,}})$",
            # Our notification's text starts below a line of dashes; Outlook draws underscores.
            rf"^({_QUOTED}[ \t]*(?:-{{30,}}|_{{30,}})[ \t]*)$",
        ],
    },
)

_HEADER: Final[re.Pattern[str]] = EmailMessage(
    text="", languages=["en", "zh", _EXTENSION]
).HEADER_REGEX
_NEWLINE: Final = re.compile("\n")
_SIGNATURE: Final = re.compile(r"--[ \t]?")
_ATTRIBUTION: Final = re.compile(r".*(?:@|\bwrote\b|写道|寫道).*[:：]\s*", re.IGNORECASE)
_ATTRIBUTION_MAX: Final = 300  # characters; longer lines are text (and cost no backtracking)
_WRAPPED: Final = re.compile(r"\s*(?:On|在)\s", re.IGNORECASE)


def new_text(text: str) -> str:
    """The text the sender wrote in this mail, without what it quotes or repeats."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines, attributions = _cut_at_header(lines)
    lines = _cut_at_signature(lines)
    lines = _without_outer_quotes(lines, attributions)
    # dedent: a rendering of HTML indents the whole text
    return textwrap.dedent("\n".join(line.rstrip() for line in lines)).strip("\n")


def _cut_at_header(lines: list[str]) -> tuple[list[str], set[int]]:
    """Cut at the first history header; the line numbers of attributions of ``>`` quotes."""
    probe = "\n".join(line.strip() for line in lines)  # the library's view of each line
    breaks = [newline.start() for newline in _NEWLINE.finditer(probe)]
    attributions: set[int] = set()
    for match in _HEADER.finditer(probe):
        found = match.group()
        start = bisect_left(breaks, match.start() + len(found) - len(found.lstrip("\n")))
        end = bisect_left(breaks, match.end())
        if _quoted(lines[start]) or start in attributions:
            continue
        if not _quote_follows(lines, end + 1, len(lines)):
            return lines[:start], attributions
        attributions.update(range(start, end + 1))
    return lines, attributions


def _cut_at_signature(lines: list[str]) -> list[str]:
    for number, line in enumerate(lines):
        if _SIGNATURE.fullmatch(line):
            return lines[:number]
    return lines


def _without_outer_quotes(lines: list[str], attributions: set[int]) -> list[str]:
    """Drop attributions and the quoted blocks before the first and after the last new line."""
    new = deque(
        number
        for number, line in enumerate(lines)
        if line.strip() and not _quoted(line) and number not in attributions
    )
    limit = len(lines)
    while new:
        first, last = new[0], new[-1]
        if _attribution(lines[first]) and _quote_follows(lines, first + 1, limit):
            attributions.add(new.popleft())
        elif _attribution(lines[last]) and (
            last + 1 == limit or _quote_follows(lines, last + 1, limit)
        ):
            limit = _attribution_start(lines, last)
            while new and new[-1] >= limit:
                new.pop()
        else:
            return [lines[n] for n in range(first, last + 1) if n not in attributions]
    return []


def _attribution_start(lines: list[str], last: int) -> int:
    """Where the attribution ending on line ``last`` starts: clients wrap "On <date>,
    <name> wrote:" over up to three lines."""
    for start in range(max(last - 2, 0), last):
        paragraph = lines[start:last]
        if all(line.strip() for line in paragraph) and _WRAPPED.match(lines[start]):
            return start
    return last


def _attribution(line: str) -> bool:
    return len(line) <= _ATTRIBUTION_MAX and _ATTRIBUTION.fullmatch(line) is not None


def _quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _quote_follows(lines: list[str], start: int, limit: int) -> bool:
    """Whether the next non-blank line from ``start`` on (before ``limit``) is ``>``-quoted."""
    for number in range(start, limit):
        if lines[number].strip():
            return _quoted(lines[number])
    return False


# -- HTML -----------------------------------------------------------------------------------

_QUOTE_CLASSES: Final = frozenset({"gmail_quote", "gmail_attr", "moz-cite-prefix", "yahoo_quoted"})
_QUOTE_IDS: Final = frozenset({"isReplyContent"})
# Outlook marks where the history starts; everything after the mark in the document goes.
_HISTORY_MARKS: Final = frozenset(
    {"divRplyFwdMsg", "appendonsend", "mail-editor-reference-message-container"}
)


def strip_html_quote(markup: str) -> str:
    """The HTML without the clients' quote containers, to render before ``new_text``.

    Gmail (``gmail_quote``), Thunderbird and Apple Mail (``<blockquote type="cite">``),
    Yahoo, NetEase (``isReplyContent``), and Outlook (``divRplyFwdMsg``, ``appendonsend``:
    markers followed by the history). Markup that lxml cannot read comes back unchanged.
    """
    if not markup.strip():
        return markup
    try:
        root = html.document_fromstring(markup)
    except (etree.ParserError, ValueError):
        return markup
    elements = [e for e in root.iter() if isinstance(e, html.HtmlElement)]  # no comments
    mark = next((e for e in elements if e.get("id") in _HISTORY_MARKS), None)
    if mark is not None:
        _drop_from(mark)
    for element in [e for e in elements if _is_quote(e)]:
        if element.getparent() is not None:  # the root has none
            element.drop_tree()
    return str(html.tostring(root, encoding="unicode"))


def _is_quote(element: html.HtmlElement) -> bool:
    classes = (element.get("class") or "").split()
    return (
        any(name in _QUOTE_CLASSES for name in classes)
        or element.get("id") in _QUOTE_IDS
        or (element.tag == "blockquote" and (element.get("type") or "").lower() == "cite")
    )


def _drop_from(mark: html.HtmlElement) -> None:
    """Remove ``mark`` and everything after it in document order (not its ancestors)."""
    node = mark
    while (parent := node.getparent()) is not None:
        for later in list(node.itersiblings()):
            parent.remove(later)
        node.tail = None
        node = parent
    mark.drop_tree()
