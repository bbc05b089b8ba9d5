"""new_text and strip_html_quote: literal tables, the replies in tests/mails/replies/ (mutt's
own and client-shaped ones, see make_replies.py), and the reply corpora of the shared
development corpus (skipped where it is absent)."""

from __future__ import annotations

import os
import quopri
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from inscriptis import get_text

from mailticket.parse.mail import parse
from mailticket.parse.reply_text import new_text, strip_html_quote

REPLIES = Path(__file__).parent / "mails" / "replies"
CORPUS = Path(
    os.environ.get("MAILTICKET_CORPUS") or Path(__file__).resolve().parents[2] / "shared" / "corpus"
)
NEW_EN = "Hi Bob,\n\nplease clear your browser cache and sign in again.\n\nAlice"
NEW_ZH = "王先生您好：\n\n已为您重置密码，请用新密码登录。\n\n李娜"
DASHES = "-" * 72

CASES = [
    # Gmail, top-posted
    (
        "Done.\n\nOn Mon, Jan 5, 2026 at 10:00 AM Support <support@example.com> wrote:\n\n> help\n",
        "Done.",
    ),
    # Gmail wraps a long attribution
    (
        "Done.\n\nOn Mon, Jan 5, 2026 at 10:00 AM Support Team of Example Incorporated <\nsupport@example.com> wrote:\n> help\n",
        "Done.",
    ),
    # mutt, bottom-posted, with a signature
    (
        "On Mon, Jan 05, 2026 at 10:00:00AM +0800, support@example.com wrote:\n> help\n> me\n\nDone.\n\n-- \nAlice\n",
        "Done.",
    ),
    # Apple Mail quotes its own attribution
    ("Done.\n\n> On 5 Jan 2026, at 10:00, Support <s@example.com> wrote:\n> \n> help\n", "Done."),
    # Thunderbird's other attributions
    ("Done.\n\nSupport wrote on 05/01/2026 10:00:\n> help\n", "Done."),
    ("Done.\n\nSupport wrote:\n> help\n", "Done."),
    ("At 14:56 02.06.2003 -0400, you wrote:\n>> help\n>\n> more\n\nDone.\n", "Done."),
    # Outlook desktop, Outlook web, old Outlook
    (
        "Done.\n\nFrom: Support <support@example.com>\nSent: Monday, January 5, 2026 10:00 AM\nTo: Alice\nSubject: [MT-7] help\n\nhelp\n",
        "Done.",
    ),
    ("Done.\n\n________________________________\nFrom: Support\nSent: Monday\n\nhelp\n", "Done."),
    ("Done.\n\n-----Original Message-----\nFrom: Support\nSent: Monday\n\nhelp\n", "Done."),
    # our notification's text below its line of dashes, unquoted
    (f"Done.\n\n{DASHES}\nI cannot log in.\n", "Done."),
    # Gmail, Thunderbird, Apple Mail and NetEase in Chinese
    ("好的\n\n张三 <zs@gmail.com> 于2026年1月5日周一 10:00写道：\n\n> 你好\n", "好的"),
    ("好的\n\n在 2026/1/5 10:00, 张三 写道:\n> 你好\n", "好的"),
    ("好的\n\n2026年1月5日 上午10:00，张三 <zs@icloud.com> 写道：\n\n新工单\n", "好的"),
    ('好的\n\n在 2026-01-05 10:00:00，"张三" <zs@163.com> 写道：\n>你好\n', "好的"),
    # Chinese Outlook (ASCII colons), Foxmail (full-width), Traditional Chinese Outlook
    (
        "好的\n\n发件人: Support\n发送时间: 2026年1月5日 10:00\n收件人: 李娜\n主题: 你好\n\n你好\n",
        "好的",
    ),
    ("好的\n\n发件人： Support\n发送时间： 2026-01-05 10:00\n收件人： 李娜\n\n你好\n", "好的"),
    (
        "好的\n\n寄件者: Support\n寄件日期: 2026年1月5日 10:00\n收件者: 李娜\n主旨: 你好\n\n你好\n",
        "好的",
    ),
    # separators: Outlook zh, QQ Mail (with its &nbsp;), NetEase Mail Master
    ("好的\n\n-----邮件原件-----\n你好\n", "好的"),
    ("好的\n\n-----原始邮件-----\n你好\n", "好的"),
    ("好的\n\n------------------&nbsp;原始邮件&nbsp;------------------\n你好\n", "好的"),
    ("好的\n\n---- 回复的原邮件 ----\n| 发件人 | 张三 |\n你好\n", "好的"),
    ("好的\n\n| 发件人 | 张三<zs@163.com> |\n| 日期 | 2026年1月5日 |\n你好\n", "好的"),
    # ordinary Chinese text with "时间：" and "主题：" lines is no header block
    (
        "时间：明天上午\n主题：网络升级\n请提前准备。",
        "时间：明天上午\n主题：网络升级\n请提前准备。",
    ),
    # signatures: "-- " and "--" lines, not "--" inside a line
    ("Done.\n\n-- \nAlice\nACME", "Done."),
    ("Done.\n--\nAlice", "Done."),
    ("Use a -- b here.\nOK", "Use a -- b here.\nOK"),
    # indentation of pasted commands and logs is kept
    (
        "Run:\n\n    sudo systemctl restart x\n\nAlice",
        "Run:\n\n    sudo systemctl restart x\n\nAlice",
    ),
    # inline answers keep the lines they answer
    (
        "On Mon, Jan 5, 2026 at 10:00 AM S <s@example.com> wrote:\n> Which version?\n\n2.3\n\n> Which OS?\n\nLinux\n\n> bye\n",
        "2.3\n\n> Which OS?\n\nLinux",
    ),
    # commands at the top are text here (agent_commands reads them)
    ("#close\n\nDone.\n\nOn Mon, Jan 5, 2026, S <s@example.com> wrote:\n> help", "#close\n\nDone."),
    # nothing new
    ("On Mon, Jan 5, 2026 at 10:00 AM S <s@example.com> wrote:\n> help\n", ""),
    ("> help\n> me\n", ""),
    ("", ""),
    ("\r\nDone.\r\n\r\nOn Mon, Jan 5, 2026, S <s@example.com> wrote:\r\n> help\r\n", "Done."),
    # a line starting "On" is no attribution
    ("On Thursday:\n\nthe fix ships.", "On Thursday:\n\nthe fix ships."),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_new_text(text: str, expected: str) -> None:
    assert new_text(text) == expected


# -- the replies in tests/mails/replies -------------------------------------------------------

FOXMAIL = f"{NEW_ZH}\n\nlina@example.cn"  # Foxmail's default signature: the sender's address
MAILS = {
    # file: (new text of the text/plain part, of the HTML part or None when there is none)
    "mutt_top.eml": (NEW_EN, None),
    "mutt_bottom.eml": (NEW_EN, None),
    "mutt_zh.eml": (NEW_ZH, None),
    "mutt_commands.eml": ("#priority high\n#tag vip billing\n\n" + NEW_EN, None),
    "gmail.eml": (NEW_EN, NEW_EN),
    "outlook_desktop.eml": (NEW_EN, NEW_EN),
    "outlook_web_html_only.eml": (NEW_EN, NEW_EN),  # text: the intake's rendering of the HTML
    "apple_mail.eml": (NEW_EN, NEW_EN),
    "thunderbird_bottom.eml": (NEW_EN, NEW_EN),
    "thunderbird_zh.eml": (NEW_ZH, None),
    "foxmail.eml": (FOXMAIL, None),
    "qq_mail.eml": (NEW_ZH, NEW_ZH),
    "netease.eml": (NEW_ZH, NEW_ZH),
    "outlook_zh.eml": (NEW_ZH, None),
}


def test_every_reply_fixture_is_listed() -> None:
    assert {path.name for path in REPLIES.glob("*.eml")} == set(MAILS)


@pytest.mark.parametrize("name", sorted(MAILS))
def test_replies_of_real_clients(name: str) -> None:
    mail = parse((REPLIES / name).read_bytes())
    text_expected, html_expected = MAILS[name]
    assert not mail.lossy
    assert new_text(mail.text) == text_expected
    if html_expected is None:
        assert not mail.html
    else:
        assert new_text(get_text(strip_html_quote(mail.html))) == html_expected


def test_mutt_replies_come_from_mutt() -> None:
    """The mutt fixtures were composed by mutt, not written by hand (see make_replies.py)."""
    for name in ("mutt_top.eml", "mutt_bottom.eml", "mutt_zh.eml", "mutt_commands.eml"):
        raw = (REPLIES / name).read_bytes()
        assert b"In-Reply-To: <MT-7." in raw
        assert b"Content-Disposition: inline" in raw  # mutt's mark on its text part


# -- HTML -----------------------------------------------------------------------------------

HTML_CASES = [
    (
        '<div dir="ltr">New</div><div class="gmail_quote"><div class="gmail_attr">On Mon S wrote:</div>'
        '<blockquote class="gmail_quote">Old</blockquote></div>',
        "New",
    ),
    (
        '<p>New</p><div class="moz-cite-prefix">S wrote:</div><blockquote type="cite">Old</blockquote>',
        "New",
    ),
    ('<p>New</p><blockquote type="CITE"><div>Old</div></blockquote><p>Below</p>', "New\n\nBelow"),
    # Outlook: everything after the mark goes, also outside the mark's parent
    (
        '<div><p>New</p><div id="appendonsend"></div><hr><p>Old</p></div><p>Older</p>tail',
        "New",
    ),
    ('<p>New</p><hr><div id="divRplyFwdMsg"><b>From:</b> S</div><div>Old</div>', "New"),
    ('<div>New</div><blockquote id="isReplyContent">Old</blockquote>', "New"),
    ('<div>New</div><div class="yahoo_quoted">Old</div>', "New"),
    # an agent's own blockquote is not a reply quote
    ("<p>See:</p><blockquote>the manual</blockquote>", "See:\n\nthe manual"),
    ("<div>New<blockquote type=cite>Old", "New"),  # broken markup
    ("just text", "just text"),
]


@pytest.mark.parametrize(("markup", "expected"), HTML_CASES)
def test_strip_html_quote(markup: str, expected: str) -> None:
    rendered = get_text(strip_html_quote(markup))
    assert "\n".join(line.strip() for line in rendered.strip().splitlines()) == expected


@pytest.mark.parametrize("markup", ["", "   ", "<!-- only a comment -->"])
def test_strip_html_quote_leaves_empty_markup(markup: str) -> None:
    assert get_text(strip_html_quote(markup)).strip() == ""


# -- robustness -------------------------------------------------------------------------------

LINES = st.sampled_from(
    [
        "",
        "Done.",
        "  indented",
        "> quoted",
        ">> twice",
        "On Mon, Jan 5, 2026, S <s@example.com> wrote:",
        "S wrote:",
        "From: S",
        "Sent: Monday",
        "发件人：S",
        "发送时间：今天",
        "在 2026/1/5, 张三 写道：",
        "-- ",
        "--",
        DASHES,
        "-----原始邮件-----",
        "#close",
        "好的",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(LINES, max_size=25))
def test_new_text_only_keeps_lines_of_its_input(lines: list[str]) -> None:
    text = "\n".join(lines)
    result = new_text(text)
    assert {line.strip() for line in result.split("\n")} <= {line.strip() for line in lines} | {""}


# -- the shared corpus ----------------------------------------------------------------------

corpus = pytest.mark.skipif(
    not CORPUS.is_dir(), reason=f"development corpus not found at {CORPUS} (set MAILTICKET_CORPUS)"
)

# file: (start of the new text, its end); None means the whole text is new
CORPUS_REPLIES: dict[str, tuple[str, str] | None] = {
    "github-email_reply_parser/email_1_3.txt": ("Oh thanks.", "-Abhishek Kona"),
    "github-email_reply_parser/email_1_4.txt": ("Awesome!", "problem with it."),
    "github-email_reply_parser/email_1_6.txt": ("I get proper", "torch of pixels"),
    "github-email_reply_parser/email_1_7.txt": (":+1:", ":+1:"),
    "github-email_reply_parser/email_1_8.txt": ("I will reply under this one", "and under this."),
    "github-email_reply_parser/email_1_2.txt": ("Hi,\n> Hi folks", 'them all individually."'),
    "github-email_reply_parser/email_2_1.txt": ("Outlook with a reply", "Outlook with a reply"),
    "github-email_reply_parser/email_2_2.txt": ("Outlook with a reply directly", "above line"),
    "github-email_reply_parser/email_bullets.txt": ("test 2 this", "\n   - and another"),
    "github-email_reply_parser/correct_sig.txt": ("this is", "correct -- signature."),
    "github-email_reply_parser/greedy_on.txt": ("On your remote host", "tunnel is not working."),
    "github-email_reply_parser/email_one_is_not_on.txt": ("Thank, this", "when I run..."),
    "github-email_reply_parser/pathological.txt": ("I think you're onto", "back to a computer."),
    "github-email_reply_parser/email_sig_delimiter_in_middle_of_line.txt": None,
    "github-email_reply_parser/email_sent_from_my_not_signature.txt": None,
    "mail-parser-reply/email_gmail.txt": ("This is a test", "github message."),
    "mail-parser-reply/email_headers_no_delimiter.txt": ("And another reply!", "another reply!"),
    "mail-parser-reply/email_partial_quote_header.txt": ("On your remote", "not working."),
    "mail-parser-reply/multi_header.txt": ("No problem.", "start a new order."),
    "mail-parser-reply/email_2_3.txt": ("Outlook with a reply above", "unusual format"),
    "mail-parser-reply/outlook.txt": None,
    "willdurand-EmailReplyParser/email_4.txt": ("Awesome!", "problem with it."),
    "willdurand-EmailReplyParser/email_18.txt": ("Fusce bibendum", "nec nibh."),
    "willdurand-EmailReplyParser/email_22.txt": (
        "Fusce bibendum",
        "nec nibh.",
    ),  # 发件人:/发送时间:
    "willdurand-EmailReplyParser/email_thread.txt": ("This is new", "thread from bellow."),
    "willdurand-EmailReplyParser/email_unquoted_reply.txt": ("This is my reply.", "my reply."),
    "willdurand-EmailReplyParser/email_19.txt": ("On Thursday, I get", "torch of pixels"),
    "willdurand-EmailReplyParser/email_20.txt": ("On Thursday.", "On Thursday."),
    "willdurand-EmailReplyParser/email_2_1.txt": ("Outlook with a reply", "with a reply"),
}


def _corpus_text(name: str) -> str:
    return (CORPUS / name).read_text(encoding="utf-8", errors="replace")


@corpus
@pytest.mark.parametrize("name", sorted(CORPUS_REPLIES))
def test_corpus_replies(name: str) -> None:
    text = _corpus_text(name)
    result = new_text(text)
    expected = CORPUS_REPLIES[name]
    if expected is None:
        assert result == text.strip()
    else:
        assert result.startswith(expected[0]), result[:200]
        assert result.endswith(expected[1]), result[-200:]
        assert len(result) < len(text.strip())


@corpus
def test_corpus_reply_with_quoted_printable_left_in() -> None:
    """The file keeps its QP soft breaks ("w=\\nrote:"); decoded as the intake would, the
    attribution and the whole quoted thread below it go."""
    raw = (CORPUS / "mail-parser-reply/begins_with_signature.txt").read_bytes()
    result = new_text(quopri.decodestring(raw).decode())
    assert result.startswith("Thank you, Sonya Johnson.")
    assert result.endswith("Regards,\n\nChristopher Edwards")


@corpus
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "django-helpdesk/forwarded-message.eml",
            "This is email body",
        ),  # -----Original Message-----
        ("webklex-php-imap/issue-412.eml", "Here is my reply to your reply.\n\nTony Marston"),
        ("webklex-php-imap/issue-348.eml", ""),  # a forward with nothing written above it
    ],
)
def test_corpus_mails(name: str, expected: str) -> None:
    mail = parse((CORPUS / name).read_bytes())
    assert new_text(mail.text) == expected
    if mail.html:
        assert new_text(get_text(strip_html_quote(mail.html))) == expected


@corpus
def test_corpus_bottom_post_under_an_x_wrote_attribution() -> None:
    mail = parse((CORPUS / "rt/new-ticket-from-iso-8859-1-full").read_bytes())
    result = new_text(mail.text)
    assert result.startswith("Hello again,\n\nThanks for your fast replay!")
    assert result.endswith("&aerlig;")  # the signature below "-- " is gone
    assert ">" not in result


@corpus
def test_every_corpus_reply_keeps_only_its_own_lines() -> None:
    """Over every body-only reply: nothing is invented, and the long ones finish."""
    files = [
        path
        for folder in (
            "github-email_reply_parser",
            "willdurand-EmailReplyParser",
            "mail-parser-reply",
        )
        for path in sorted((CORPUS / folder).glob("*.txt"))
    ]
    assert len(files) > 80
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        result = new_text(text)
        kept = {line.strip() for line in result.split("\n")}
        assert kept <= {line.strip() for line in text.replace("\r", "\n").split("\n")}, path.name
