"""Every template, in English and Chinese, rendered through notices.Renderer with sample
variables: the subject line, a key phrase, no variable left undefined (StrictUndefined)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import pytest

from mailticket.outbound.agent_files import OVER_BUDGET, FileNote
from mailticket.outbound.notices import Renderer
from mailticket.parse.reply_text import new_text

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
OPENED = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SampleTicket:
    """What templates see as ``ticket`` (the intake's TicketView has these fields)."""

    number: int = 7
    tag: str = "[MT-7]"
    subject: str = "Cannot log in"
    status: str = "pending"
    priority: str = "high"
    queue: str = "general"
    requester: str = "bob@example.org"
    created_at: datetime = OPENED
    due_at: datetime | None = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SampleMessage:
    from_addr: str = "alice@example.com"
    from_name: str = "Alice Agent"
    subject: str = "Re: [MT-7] Cannot log in"
    text: str = "I cannot log in since yesterday."  # the whole mail, quotes and all


@dataclass(frozen=True, slots=True)
class SampleSettings:
    support_address: str = "support@example.com"
    comment_address: str | None = None
    prefix: str = "MT"


@dataclass(frozen=True, slots=True)
class Listed:
    number: int
    tag: str
    subject: str
    status: str
    updated_at: datetime


def context(**extra: Any) -> dict[str, Any]:
    return {
        "ticket": SampleTicket(),
        "message": SampleMessage(),
        "settings": SampleSettings(),
        **extra,
    }


NEW_TEXT = "Please clear your browser cache."
ERRORS = ["line 2: #priority: unknown priority 'hgih' (known: urgent, high, normal, low)"]
TICKETS = [
    Listed(7, "[MT-7]", "Cannot log in", "pending", datetime(2026, 1, 6, 9, 30, tzinfo=UTC)),
    Listed(3, "[MT-3]", "发票抬头", "closed", datetime(2025, 12, 1, 8, 0, tzinfo=UTC)),
]
EXTRA: dict[str, dict[str, Any]] = {
    "agent_reply": {"text": NEW_TEXT},
    "agent_note": {"text": NEW_TEXT},
    "agent_update": {"text": NEW_TEXT},
    "agent_error": {"errors": ERRORS},
    "agent_confirm": {"text": NEW_TEXT},
    "loop_suspected": {"text": "31+ mails on the ticket in 30/1h"},
    "agent_digest": {"text": "bob@example.com opened 6+ tickets in 5/10m"},
    "escalation": {"reason": "first response overdue"},
    "status": {"tickets": TICKETS},
}
# name: (English subject, a phrase of the English body, Chinese subject, a phrase of its body)
EXPECTED = {
    "ack": (
        "[MT-7] Cannot log in",
        "opened ticket [MT-7]",
        "[MT-7] Cannot log in",
        "工单编号为 [MT-7]",
    ),
    "ack_payment": (
        "[MT-7] Cannot log in",
        "please reply with the transaction hash",
        "[MT-7] Cannot log in",
        "请回复本邮件并提供交易哈希",
    ),
    "agent_new": (
        "[MT-7] New ticket: Cannot log in",
        "Reply to this mail to answer the requester.",
        "[MT-7] 新工单：Cannot log in",
        "直接回复本邮件即可答复请求人。",
    ),
    "agent_reply": (
        "[MT-7] Cannot log in",
        "keep [MT-7] in the subject",
        "[MT-7] Cannot log in",
        "保留主题中的 [MT-7]",
    ),
    "agent_note": (
        "[MT-7] Internal note: Cannot log in",
        "the requester does not see it",
        "[MT-7] 内部备注：Cannot log in",
        "请求人看不到此备注",
    ),
    "agent_update": (
        "[MT-7] New reply: Cannot log in",
        "alice@example.com replied on [MT-7]",
        "[MT-7] 新回复：Cannot log in",
        "alice@example.com 回复了工单 [MT-7]",
    ),
    "agent_error": (
        "[MT-7] Commands not applied: Cannot log in",
        "changed nothing and nothing was sent to the requester",
        "[MT-7] 命令未执行：Cannot log in",
        "未做任何更改，也没有发送给请求人",
    ),
    "agent_confirm": (
        "[MT-7] Not applied: confirm your mail on Cannot log in",
        "reply to this mail (any text) to apply it",
        "[MT-7] 未生效：请确认您在 Cannot log in 的邮件",
        "请直接回复本邮件（内容不限）",
    ),
    "loop_suspected": (
        "[MT-7] Mail loop suspected: Cannot log in",
        "#untag loop-suspected",
        "[MT-7] 疑似邮件循环：Cannot log in",
        "#untag loop-suspected",
    ),
    "agent_digest": (
        "[MT-7] Many new tickets from bob@example.org",
        "bob@example.com opened 6+ tickets in 5/10m",
        "[MT-7] 来自 bob@example.org 的大量新工单",
        "不再逐一通知",
    ),
    "resolved": (
        "[MT-7] Resolved: Cannot log in",
        "reply to this mail: the ticket\nwill be reopened",
        "[MT-7] 已解决：Cannot log in",
        "请直接回复本邮件，工单将重新打开",
    ),
    "status": ("Your tickets", "these are your tickets", "您的工单", "以下是您的工单"),
    "closed": (
        "[MT-7] Closed: Cannot log in",
        "the ticket will be reopened",
        "[MT-7] 已关闭：Cannot log in",
        "工单将重新打开",
    ),
    "reminder_agent": (
        "[MT-7] Reminder: first answer due 2026-01-05 10:00 UTC",
        "has no answer yet",
        "[MT-7] 提醒：首次回复将于 2026-01-05 10:00 UTC 到期",
        "尚未答复",
    ),
    "reminder_requester": (
        "[MT-7] Cannot log in",
        "still waiting for your answer",
        "[MT-7] Cannot log in",
        "仍在等待您的回复",
    ),
    "escalation": (
        "[MT-7] Escalation: first answer overdue (high)",
        "has missed its first-response time",
        "[MT-7] 升级：首次回复已超时（high）",
        "已超过首次回复时限",
    ),
}


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer([TEMPLATES])


def test_every_template_has_both_languages_and_a_test() -> None:
    english = {path.name.removesuffix(".txt.j2") for path in TEMPLATES.glob("*.txt.j2")}
    chinese = {path.name.removesuffix(".txt.j2") for path in (TEMPLATES / "zh").glob("*.txt.j2")}
    assert english == chinese == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("language", ["en", "zh"])
def test_render(renderer: Renderer, name: str, language: str) -> None:
    subject_en, phrase_en, subject_zh, phrase_zh = EXPECTED[name]
    rendered = renderer.render(name, language, context(**EXTRA.get(name, {})))
    subject, phrase = (subject_en, phrase_en) if language == "en" else (subject_zh, phrase_zh)
    assert rendered.subject == subject
    assert phrase in rendered.text
    assert "{{" not in rendered.text and "{%" not in rendered.text
    assert rendered.html is None


@pytest.mark.parametrize("name", ["agent_reply", "agent_note", "agent_update"])
@pytest.mark.parametrize("language", ["en", "zh"])
def test_the_new_text_is_relayed(renderer: Renderer, name: str, language: str) -> None:
    rendered = renderer.render(name, language, context(text=NEW_TEXT))
    assert NEW_TEXT in rendered.text
    assert SampleMessage().text not in rendered.text  # never the whole mail with its quotes


@pytest.mark.parametrize("language", ["en", "zh"])
def test_agent_error_lists_every_error(renderer: Renderer, language: str) -> None:
    errors = [*ERRORS, "line 3: #frobnicate: unknown command"]
    rendered = renderer.render("agent_error", language, context(errors=errors))
    assert "\n  " + errors[0] + "\n  " + errors[1] + "\n" in rendered.text


@pytest.mark.parametrize(
    ("language", "lines"),
    [
        (
            "en",
            [
                "[MT-7]  pending, last update 2026-01-06 09:30 UTC",
                "    Cannot log in",
                "[MT-3]  closed, last update 2025-12-01 08:00 UTC",
                "    发票抬头",
            ],
        ),
        (
            "zh",
            [
                "[MT-7]  等待您的回复，最后更新 2026-01-06 09:30 UTC",
                "    Cannot log in",
                "[MT-3]  已关闭，最后更新 2025-12-01 08:00 UTC",
                "    发票抬头",
            ],
        ),
    ],
)
def test_status_lists_the_tickets(renderer: Renderer, language: str, lines: list[str]) -> None:
    rendered = renderer.render("status", language, context(tickets=TICKETS))
    assert "\n".join(lines) in rendered.text


@pytest.mark.parametrize(
    ("language", "phrase"),
    [
        ("en", "we have no tickets from alice@example.com"),
        ("zh", "我们没有找到来自 alice@example.com 的工单"),
    ],
)
def test_status_without_tickets(renderer: Renderer, language: str, phrase: str) -> None:
    rendered = renderer.render("status", language, context(tickets=[]))
    assert phrase in rendered.text
    assert "[MT-" not in rendered.text


@pytest.mark.parametrize("name", ["agent_reply", "agent_note", "agent_update"])
def test_the_new_text_is_required(renderer: Renderer, name: str) -> None:
    """StrictUndefined: forgetting ``text`` fails loudly instead of relaying nothing."""
    with pytest.raises(jinja2.UndefinedError):
        renderer.render(name, "en", context())


@pytest.mark.parametrize("name", ["agent_new", "agent_update", "agent_note"])
@pytest.mark.parametrize("language", ["en", "zh"])
def test_reply_text_cuts_a_notification_at_its_line_of_dashes(
    renderer: Renderer, name: str, language: str
) -> None:
    """A client quoting the notification without '>' and without a header block (Foxmail,
    some phones) must not relay the requester's text below the dashes back to them."""
    rendered = renderer.render(name, language, context(text=NEW_TEXT))
    intro, dashes, quoted = rendered.text.partition("-" * 72)
    assert dashes and quoted.strip() in (NEW_TEXT, SampleMessage().text)
    reply = new_text(f"Done, thanks.\n\n{rendered.text}")
    assert reply == f"Done, thanks.\n\n{intro.strip()}"


CC = ["carol@example.org"]
FILES = (
    FileNote("屏幕截图.png", "image/png", 10_240, True),
    FileNote("dump.bin", "application/octet-stream", 50_000_000, False, OVER_BUDGET),
)


def variant(name: str, flags: tuple[bool, ...]) -> dict[str, Any]:
    """One of the contexts a template meets: every optional paragraph on or off."""
    due, secret, fields, cc, other, files = flags
    ticket = SampleTicket(
        due_at=SampleTicket().due_at if due else None,
        fields={"tx_hash": "0x" + "ab" * 32, "app_version": "3.2.1"} if fields else {},
        status="closed" if other else "pending",
    )
    extra: dict[str, Any] = {
        **EXTRA.get(name, {}),
        "secret_warning": secret,
        "proposed_cc": CC if cc else [],
        "files": FILES if files else (),
    }
    if other:
        extra |= {"tickets": [], "reason": ""} if name in ("status", "escalation") else {}
    settings = SampleSettings(comment_address="notes@example.com" if other else None)
    return {**context(**extra), "ticket": ticket, "settings": settings}


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("language", ["en", "zh"])
def test_no_blank_line_after_the_subject_nor_two_in_a_row(
    renderer: Renderer, name: str, language: str
) -> None:
    """Optional paragraphs (due time, secret warning, fields, Cc...) on or off, the mail
    reads as written: one blank line between paragraphs, none before the first."""
    for flags in itertools.product([False, True], repeat=6):
        text = renderer.render(name, language, variant(name, flags)).text
        lines = [line.rstrip() for line in text.split("\n")]
        assert lines[0], f"{flags}: blank line after the subject:\n{text}"
        doubled = [i + 1 for i in range(len(lines) - 1) if lines[i] == lines[i + 1] == ""]
        assert doubled == [], f"{flags}: two blank lines in a row at line {doubled}:\n{text}"


@pytest.mark.parametrize(
    ("language", "closed"), [("en", "closed [MT-7]"), ("zh", "关闭了工单 [MT-7]")]
)
@pytest.mark.parametrize("status", ["resolved", "closed"])
def test_agent_update_on_a_closed_ticket_has_no_due_time(
    renderer: Renderer, language: str, closed: str, status: str
) -> None:
    """A requester's ``#close``: the agents read that it is closed, with no ``Respond by``
    and, when the requester wrote nothing else, no empty relayed text."""
    ticket = SampleTicket(status=status)
    rendered = renderer.render("agent_update", language, {**context(text=""), "ticket": ticket})
    assert "Respond by" not in rendered.text and "回复截止" not in rendered.text
    assert "-" * 72 not in rendered.text
    assert (closed in rendered.text) == (status == "closed")
    pending = renderer.render("agent_update", language, context(text=NEW_TEXT)).text
    assert "2026-01-05 10:00 UTC" in pending and pending.endswith(NEW_TEXT + "\n")
