"""Write the agents' replies of tests/test_reply_text.py (run: python tests/mails/replies/make_replies.py).

Each mail answers a real ``agent_new`` notification (rendered by mailticket's Renderer):

- ``mutt_*.eml`` were composed by mutt itself (run in tmux: ``r`` to reply, an editor
  script types the new text, ``y`` sends to a capture script); they are regenerated only
  with ``--mutt`` because mutt stamps each run with a new date and Message-ID.
- the others are written here byte by byte in the shapes that Gmail, Outlook (desktop and
  web), Apple Mail, Thunderbird, Foxmail, QQ Mail, NetEase and Chinese Outlook give their
  replies: quote markers, attribution lines, header blocks, HTML quote containers, and the
  charsets they label (GBK text labelled gb2312, gb18030). They are hand-made, not captured.
"""

from __future__ import annotations

import base64
import hashlib
import html
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from mailticket.outbound.notices import Renderer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
NOTIFICATION_ID = b"<MT-7.5f1c2a9e0b3d7c41a2b9@support.example.com>"
SUPPORT = "support@example.com"

# The new text each reply carries: what new_text() must return.
NEW_EN = "Hi Bob,\n\nplease clear your browser cache and sign in again.\n\nAlice"
NEW_ZH = "王先生您好：\n\n已为您重置密码，请用新密码登录。\n\n李娜"


def notification(language: str) -> str:
    """The body of the agent_new notification the agents reply to."""
    ticket = SimpleNamespace(
        number=7,
        tag="[MT-7]",
        subject="Cannot log in" if language == "en" else "无法登录",
        status="new",
        priority="normal",
        queue="general",
        requester="bob@example.org",
        created_at=datetime(2026, 1, 5, 2, 0, tzinfo=UTC),
        due_at=None,
    )
    text = "I cannot log in since yesterday." if language == "en" else "从昨天起无法登录。"
    context = {
        "ticket": ticket,
        "message": SimpleNamespace(text=text),
        "settings": SimpleNamespace(support_address=SUPPORT),
    }
    return Renderer([ROOT / "templates"]).render("agent_new", language, context).text


def b64(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return b"\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def quoted(text: str, marker: str = "> ") -> str:
    return "\n".join((marker + line).rstrip() for line in text.rstrip("\n").split("\n"))


def html_lines(text: str) -> str:
    return "<br>".join(html.escape(line) for line in text.rstrip("\n").split("\n"))


@dataclass(frozen=True)
class Part:
    subtype: str
    text: str
    charset: str = "utf-8"
    codec: str | None = None  # the bytes' real encoding when the label lies (GBK as gb2312)
    params: str = ""

    def encode(self) -> bytes:
        data = self.text.replace("\n", "\r\n").encode(self.codec or self.charset)
        return (
            f'Content-Type: text/{self.subtype}; charset="{self.charset}"{self.params}\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n"
        ).encode() + b64(data)


def mail(sender: str, subject: str, headers: list[str], *parts: Part) -> bytes:
    domain = sender.rpartition("@")[2].rstrip(">")
    head = [
        f"From: {sender}",
        f"To: {SUPPORT}",
        f"Subject: {subject}",
        "Date: Mon, 5 Jan 2026 10:30:00 +0800",
        f"Message-ID: <{hashlib.sha256(parts[0].text.encode()).hexdigest()[:16]}@{domain}>",
        f"In-Reply-To: {NOTIFICATION_ID.decode()}",
        f"References: {NOTIFICATION_ID.decode()}",
        "MIME-Version: 1.0",
        *headers,
    ]
    if len(parts) == 1:
        return "\r\n".join(head).encode() + b"\r\n" + parts[0].encode() + b"\r\n"
    body = b"".join(b"--b0\r\n" + part.encode() + b"\r\n" for part in parts) + b"--b0--\r\n"
    head.append('Content-Type: multipart/alternative; boundary="b0"')
    return "\r\n".join(head).encode() + b"\r\n\r\n" + body


SUBJECT_EN = "Re: [MT-7] New ticket: Cannot log in"
SUBJECT_ZH = "回复: [MT-7] 新工单：无法登录"
GMAIL_ATTR = f"On Mon, Jan 5, 2026 at 10:00\u202fAM Support <{SUPPORT}> wrote:"


def gmail() -> bytes:
    note = notification("en")
    plain = f"{NEW_EN}\n\n{GMAIL_ATTR}\n\n{quoted(note)}\n"
    markup = (
        f'<div dir="ltr">{html_lines(NEW_EN)}</div><br><div class="gmail_quote '
        f'gmail_quote_container"><div dir="ltr" class="gmail_attr">{html.escape(GMAIL_ATTR)}'
        '<br></div><blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;'
        f'border-left:1px solid rgb(204,204,204);padding-left:1ex">{html_lines(note)}'
        "</blockquote></div>\n"
    )
    return mail(
        "Alice Agent <alice@example.com>",
        SUBJECT_EN,
        [],
        Part("plain", plain),
        Part("html", markup),
    )


OUTLOOK_BLOCK = (
    f"From: Support <{SUPPORT}>\nSent: Monday, January 5, 2026 10:00 AM\n"
    f"To: Alice Agent <alice@example.com>\nSubject: [MT-7] New ticket: Cannot log in"
)


def outlook_desktop() -> bytes:
    note = notification("en")
    plain = f"{NEW_EN}\n\n{OUTLOOK_BLOCK}\n\n{note}"
    block = "<br>".join(
        f"<b>{html.escape(name)}:</b> {html.escape(value)}"
        for name, _, value in (line.partition(": ") for line in OUTLOOK_BLOCK.split("\n"))
    )
    markup = (
        '<html><body lang="EN-US"><div class="WordSection1">'
        + "".join(
            f'<p class="MsoNormal">{html.escape(line) or "&nbsp;"}</p>'
            for line in NEW_EN.split("\n")
        )
        + '<div id="appendonsend"></div><div style="border:none;border-top:solid #E1E1E1 1.0pt;'
        f'padding:3.0pt 0cm 0cm 0cm"><p class="MsoNormal">{block}</p></div>'
        f'<p class="MsoNormal">{html_lines(note)}</p></div></body></html>\n'
    )
    return mail(
        "Alice Agent <alice@example.com>",
        "RE: [MT-7] New ticket: Cannot log in",
        ["X-Mailer: Microsoft Outlook 16.0"],
        Part("plain", plain, "us-ascii" if plain.isascii() else "utf-8"),
        Part("html", markup),
    )


def outlook_web_html_only() -> bytes:
    """Outlook on the web, HTML only: the history after ``divRplyFwdMsg``."""
    note = notification("en")
    block = "<br>".join(
        f"<b>{html.escape(name)}:</b> {html.escape(value)}"
        for name, _, value in (line.partition(": ") for line in OUTLOOK_BLOCK.split("\n"))
    )
    markup = (
        '<html><body><div style="font-family: Aptos, sans-serif; font-size: 12pt">'
        + "".join(f"<div>{html.escape(line) or '<br>'}</div>" for line in NEW_EN.split("\n"))
        + '</div><div id="appendonsend"></div><hr style="display:inline-block;width:98%" '
        'tabindex="-1"><div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" '
        f'style="font-size:11pt" color="#000000">{block}</font><div>&nbsp;</div></div>'
        f"<div>{html_lines(note)}</div></body></html>\n"
    )
    return mail("Alice Agent <alice@example.com>", SUBJECT_EN, [], Part("html", markup))


def apple_mail() -> bytes:
    note = notification("en")
    attribution = f"On 5 Jan 2026, at 10:00, Support <{SUPPORT}> wrote:"
    plain = f"{NEW_EN}\n\n> {attribution}\n> \n{quoted(note)}\n"
    markup = (
        '<html><body style="overflow-wrap: break-word;">'
        + "".join(f"<div>{html.escape(line) or '<br>'}</div>" for line in NEW_EN.split("\n"))
        + f'<div><br><blockquote type="cite"><div>{html.escape(attribution)}</div>'
        f'<br class="Apple-interchange-newline"><div><div>{html_lines(note)}</div></div>'
        "</blockquote></div><br></body></html>\n"
    )
    return mail(
        "Alice Agent <alice@example.com>",
        SUBJECT_EN,
        ["X-Mailer: Apple Mail (2.3776.700.51)"],
        Part("plain", plain),
        Part("html", markup),
    )


def thunderbird_bottom() -> bytes:
    """Thunderbird's default: the answer below the quote, format=flowed."""
    note = notification("en")
    attribution = f"On 05/01/2026 10:00, {SUPPORT} wrote:"
    plain = f"{attribution}\n{quoted(note)}\n\n{NEW_EN}\n\n-- \nAlice Agent, ACME support\n"
    markup = (
        f'<html><body><div class="moz-cite-prefix">{html.escape(attribution)}<br></div>'
        f'<blockquote type="cite" cite="mid:{NOTIFICATION_ID.decode()[1:-1]}">'
        f'<pre class="moz-quote-pre" wrap="">{html.escape(note)}</pre></blockquote>'
        f'<p>{html_lines(NEW_EN)}</p><pre class="moz-signature" cols="72">-- \n'
        "Alice Agent, ACME support</pre></body></html>\n"
    )
    return mail(
        "Alice Agent <alice@example.com>",
        SUBJECT_EN,
        ["User-Agent: Mozilla Thunderbird"],
        Part("plain", plain, params="; format=flowed"),
        Part("html", markup),
    )


def thunderbird_zh() -> bytes:
    note = notification("zh")
    plain = f"{NEW_ZH}\n\n在 2026/1/5 10:00, {SUPPORT} 写道:\n{quoted(note)}\n"
    return mail(
        "Li Na <lina@example.cn>",
        SUBJECT_ZH,
        ["User-Agent: Mozilla Thunderbird"],
        Part("plain", plain, params="; format=flowed"),
    )


ZH_BLOCK_FULLWIDTH = (
    "发件人： Support\n发送时间： 2026-01-05 10:00\n收件人： 李娜\n主题： [MT-7] 新工单：无法登录"
)


def foxmail() -> bytes:
    """Foxmail: GBK text labelled gb2312, the sender's address as a signature, a
    full-width-colon header block above the unquoted history."""
    note = notification("zh")
    plain = f"{NEW_ZH}\n\nlina@example.cn\n \n{ZH_BLOCK_FULLWIDTH}\n \n{note}"
    return mail(
        "=?gb2312?B?" + base64.b64encode("李娜".encode("gbk")).decode() + "?= <lina@example.cn>",
        SUBJECT_ZH,
        ["X-Mailer: Foxmail 7.2.25.375[cn]"],
        Part("plain", plain, "gb2312", "gbk"),
    )


def qq_mail() -> bytes:
    """QQ Mail: gb18030, its separator with literal ``&nbsp;`` in the plain text."""
    note = notification("zh")
    block = (
        f'发件人: "Support"<{SUPPORT}>;\n发送时间: 2026年1月5日(星期一) 上午10:00\n'
        '收件人: "李娜"<123456@qq.com>;\n主题: [MT-7] 新工单：无法登录'
    )
    plain = f"{NEW_ZH}\n\n\n\n------------------&nbsp;原始邮件&nbsp;------------------\n{block}\n\n{note}"
    markup = (
        f"<div>{html_lines(NEW_ZH)}</div><div><br></div>"
        '<div style="font-size: 12px;font-family: Arial Narrow;padding:2px 0 2px 0;">'
        "------------------&nbsp;原始邮件&nbsp;------------------</div>"
        '<div style="font-size: 12px;background:#efefef;padding:8px;">'
        + "".join(f"<div>{html.escape(line)}</div>" for line in block.split("\n"))
        + f"</div><br>{html_lines(note)}\n"
    )
    return mail(
        '"=?gb18030?B?'
        + base64.b64encode("李娜".encode("gb18030")).decode()
        + '?=" <123456@qq.com>',
        SUBJECT_ZH,
        ["X-QQ-MIME: TCMime 1.0 by Tencent", "X-Mailer: QQMail 2.x"],
        Part("plain", plain, "gb18030"),
        Part("html", markup, "gb18030"),
    )


def netease() -> bytes:
    """NetEase (163.com) webmail: GBK, a 写道： attribution, ``isReplyContent``."""
    note = notification("zh")
    attribution = f'在 2026-01-05 10:00:00，"Support" <{SUPPORT}> 写道：'
    plain = f"{NEW_ZH}\n\n\n{attribution}\n{quoted(note, '>')}\n"
    markup = (
        f'<div style="line-height:1.7;color:#000000;font-size:14px;font-family:Arial">'
        f"<div>{html_lines(NEW_ZH)}</div><br><br>"
        '<div style="position:relative;zoom:1"></div><div id="divNeteaseMailCard"></div><br>'
        f"<pre><br>{html.escape(attribution)}</pre>"
        '<blockquote id="isReplyContent" style="PADDING-LEFT: 1ex; MARGIN: 0px 0px 0px 0.8ex; '
        f'BORDER-LEFT: #ccc 1px solid">{html_lines(note)}</blockquote></div>\n'
    )
    return mail(
        "=?GBK?B?" + base64.b64encode("李娜".encode("gbk")).decode() + "?= <lina@163.com>",
        SUBJECT_ZH,
        ["X-Mailer: Coremail Webmail Server Version XT5.0.13"],
        Part("plain", plain, "GBK"),
        Part("html", markup, "GBK"),
    )


def outlook_zh() -> bytes:
    """Chinese Outlook: GBK labelled gb2312, ``-----邮件原件-----`` and ASCII colons."""
    note = notification("zh")
    block = (
        f"发件人: Support <{SUPPORT}>\n发送时间: 2026年1月5日 10:00\n"
        "收件人: 李娜 <lina@example.cn>\n主题: [MT-7] 新工单：无法登录"
    )
    plain = f"{NEW_ZH}\n\n-----邮件原件-----\n{block}\n\n{note}"
    return mail(
        "=?gb2312?B?" + base64.b64encode("李娜".encode("gbk")).decode() + "?= <lina@example.cn>",
        "答复: [MT-7] 新工单：无法登录",
        ["X-Mailer: Microsoft Outlook 16.0"],
        Part("plain", plain, "gb2312", "gbk"),
    )


HANDMADE = {
    "gmail.eml": gmail,
    "outlook_desktop.eml": outlook_desktop,
    "outlook_web_html_only.eml": outlook_web_html_only,
    "apple_mail.eml": apple_mail,
    "thunderbird_bottom.eml": thunderbird_bottom,
    "thunderbird_zh.eml": thunderbird_zh,
    "foxmail.eml": foxmail,
    "qq_mail.eml": qq_mail,
    "netease.eml": netease,
    "outlook_zh.eml": outlook_zh,
}

# -- mutt -------------------------------------------------------------------------------------

MUTTRC = """\
set mbox_type=mbox
set sendmail="{work}/capture.sh"
set editor="{work}/edit.sh"
set from="{sender}"
set use_from=yes
set include=yes
set fast_reply=yes
set edit_headers=no
set autoedit=no
set copy=no
set record=""
set postpone=no
set charset="utf-8"
set send_charset="us-ascii:utf-8"
set abort_noattach=no
set sleep_time=0
set move=no
set read_only=yes
set hostname="example.com"
set sig_dashes=yes
set signature="{work}/signature"
set attribution="{attribution}"
"""

MUTT = {
    # name: (language, sender, attribution, new text, where the editor puts it, signature)
    "mutt_top.eml": (
        "en",
        "Alice Agent <alice@example.com>",
        "On %d, %n wrote:",
        NEW_EN,
        "top",
        "Alice Agent\nACME support",
    ),
    "mutt_bottom.eml": (
        "en",
        "Alice Agent <alice@example.com>",
        "On %d, %n wrote:",
        NEW_EN,
        "bottom",
        "Alice Agent\nACME support",
    ),
    "mutt_zh.eml": (
        "zh",
        "Li Na <lina@example.cn>",
        "在 %d, %n 写道：",
        NEW_ZH,
        "top",
        "李娜 | 客服部",
    ),
    "mutt_commands.eml": (
        "en",
        "Alice Agent <alice@example.com>",
        "On %d, %n wrote:",
        "#priority high\n#tag vip billing\n\n" + NEW_EN,
        "top",
        "Alice Agent",
    ),
}


def mutt_reply(
    work: Path, language: str, sender: str, attribution: str, text: str, where: str, signature: str
) -> bytes:
    """Reply to the notification with mutt in tmux and return what mutt sent."""
    note = notification(language)
    subject = "[MT-7] New ticket: Cannot log in" if language == "en" else "[MT-7] 新工单：无法登录"
    (work / "note.mbox").write_bytes(
        (
            f"From {SUPPORT} Mon Jan  5 02:00:00 2026\nFrom: {SUPPORT}\nTo: {sender}\n"
            f"Subject: =?utf-8?B?{base64.b64encode(subject.encode()).decode()}?=\n"
            f"Date: Mon, 05 Jan 2026 10:00:00 +0800\nMessage-ID: {NOTIFICATION_ID.decode()}\n"
            f"Reply-To: {SUPPORT}\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
            f"Content-Transfer-Encoding: 8bit\n\n{note}\n"
        ).encode()
    )
    (work / "new.txt").write_text(text + "\n\n" if where == "top" else "\n" + text + "\n\n")
    # The editor types the new text at the top, or below the quote (above the signature).
    typing = (
        'cat "$W/new.txt" "$1"'
        if where == "top"
        else """awk -v f="$W/new.txt" '$0 == "-- " {while ((getline l < f) > 0) print l} {print}' "$1\""""
    )
    (work / "edit.sh").write_text(f'#!/bin/sh\nW={work}\n{typing} > "$1.new" && mv "$1.new" "$1"\n')
    (work / "capture.sh").write_text(f"#!/bin/sh\ncat > {work}/sent.eml\n")
    (work / "signature").write_text(signature + "\n")
    for script in ("edit.sh", "capture.sh"):
        (work / script).chmod(0o755)
    (work / "muttrc").write_text(MUTTRC.format(work=work, sender=sender, attribution=attribution))
    session = f"mt{work.name}"
    command = f"mutt -n -F {work}/muttrc -f {work}/note.mbox"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", command], check=True
    )
    try:
        for key, screen in (("r", "r:Reply"), ("y", "y:Send")):
            wait_for_screen(session, screen)
            subprocess.run(["tmux", "send-keys", "-t", session, key], check=True)
        for _ in range(100):
            if (work / "sent.eml").exists():
                break
            time.sleep(0.1)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    return (work / "sent.eml").read_bytes()


def wait_for_screen(session: str, text: str) -> None:
    """Wait until mutt shows ``text`` (its menu's help line), for at most ten seconds."""
    for _ in range(100):
        shown = subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
        ).stdout
        if text in shown:
            return
        time.sleep(0.1)
    raise RuntimeError(f"mutt never showed {text!r}")


def main() -> None:
    for name, make in HANDMADE.items():
        (HERE / name).write_bytes(make())
    if "--mutt" in sys.argv:
        if not shutil.which("mutt") or not shutil.which("tmux"):
            sys.exit("--mutt needs mutt and tmux (apt-get install -y mutt tmux)")
        for name, args in MUTT.items():
            with tempfile.TemporaryDirectory() as work:
                (HERE / name).write_bytes(mutt_reply(Path(work), *args))


if __name__ == "__main__":
    main()
