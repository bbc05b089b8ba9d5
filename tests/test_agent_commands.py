"""Agent commands, the requester's #close and status requests: tables of literal inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailticket.decide.agent_commands import (
    AgentMail,
    Assign,
    CcAdd,
    CcRemove,
    CommandErrors,
    Known,
    NotSpam,
    SetPriority,
    SetQueue,
    SetStatus,
    Tag,
    Untag,
    check,
    is_status_request,
    parse,
    read_agent_mail,
    requester_closes,
    without_first_line,
)
from mailticket.parse.mail import parse as parse_mail
from mailticket.parse.reply_text import new_text

AGENT = "alice@example.com"
KNOWN = Known(
    queues=("general", "security"),
    priorities=("urgent", "high", "normal", "low"),
    agents=frozenset({"alice@example.com", "bob@example.com"}),
)
STATUS_SUBJECTS = ("status", "my tickets", "我的工单", "工单状态")


@pytest.mark.parametrize(
    ("text", "commands"),
    [
        ("#close", (SetStatus("closed", 1),)),
        ("#resolve", (SetStatus("resolved", 1),)),
        ("#reopen", (SetStatus("open", 1),)),
        ("#assign bob@example.com", (Assign("bob@example.com", 1),)),
        ("#assign <Bob@Example.com>", (Assign("bob@example.com", 1),)),
        ("#assign me", (Assign(AGENT, 1),)),
        ("#assign", (Assign(AGENT, 1),)),
        ("#priority high", (SetPriority("high", 1),)),
        ("#queue security", (SetQueue("security", 1),)),
        ("#tag vip billing vip", (Tag(("vip", "billing"), 1),)),
        ("#untag vip", (Untag(("vip",), 1),)),
        ("  #CLOSE  ", (SetStatus("closed", 1),)),
        ("＃close", (SetStatus("closed", 1),)),  # typed with a Chinese input method
        ("#cc add carol@example.org", (CcAdd("carol@example.org", 1),)),
        ("#cc add <Carol@Example.ORG>", (CcAdd("carol@example.org", 1),)),
        (
            "#cc add carol@example.org dave@example.org,erin@example.org",
            (
                CcAdd("carol@example.org", 1),
                CcAdd("dave@example.org", 1),
                CcAdd("erin@example.org", 1),
            ),
        ),
        ("#cc add carol@example.org, carol@EXAMPLE.org", (CcAdd("carol@example.org", 1),)),
        ("#CC ADD carol@bücher.example", (CcAdd("carol@xn--bcher-kva.example", 1),)),
        ("#cc remove mallory@evil.example", (CcRemove("mallory@evil.example", 1),)),
        (
            "#cc remove a@evil.example\n#cc add carol@example.org\n#cc add carol@example.org",
            (
                CcRemove("a@evil.example", 1),
                CcAdd("carol@example.org", 2),
                CcAdd("carol@example.org", 3),  # twice is no conflict
            ),
        ),
        ("#notspam", (NotSpam(1),)),
        ("#notspam\n#reopen", (NotSpam(1), SetStatus("open", 2))),
        (
            "\n#priority urgent\n\n#tag outage\n#assign me\n",
            (SetPriority("urgent", 2), Tag(("outage",), 4), Assign(AGENT, 5)),
        ),
    ],
)
def test_commands(text: str, commands: tuple[object, ...]) -> None:
    assert parse(text, AGENT) == AgentMail(commands, note=False, text="")


def test_the_text_below_the_commands_is_the_reply() -> None:
    parsed = parse(
        "#resolve\n#tag fixed\n\nHello Bob,\n\n#1 is fixed.\n#close is not read here", AGENT
    )
    assert parsed == AgentMail(
        (SetStatus("resolved", 1), Tag(("fixed",), 2)),
        note=False,
        text="Hello Bob,\n\n#1 is fixed.\n#close is not read here",
    )
    assert isinstance(parsed, AgentMail) and not parsed.commands_only


def test_a_mail_without_commands_is_all_reply() -> None:
    assert parse("Hello Bob,\n\nfixed.", AGENT) == AgentMail(
        (), note=False, text="Hello Bob,\n\nfixed."
    )


@pytest.mark.parametrize("text", ["#close", "#close\n\n", "\n\n#close\n#tag done", ""])
def test_commands_only(text: str) -> None:
    parsed = parse(text, AGENT)
    assert isinstance(parsed, AgentMail) and parsed.commands_only


@pytest.mark.parametrize(
    ("text", "commands", "rest"),
    [
        ("#note\nBob called, he is fine.", (), "Bob called, he is fine."),
        ("#note\n#priority low\n\nnot urgent", (SetPriority("low", 2),), "not urgent"),
        ("#priority low\n#note\nnot urgent", (SetPriority("low", 1),), "not urgent"),
    ],
)
def test_note(text: str, commands: tuple[object, ...], rest: str) -> None:
    assert parse(text, AGENT) == AgentMail(commands, note=True, text=rest)


@pytest.mark.parametrize(
    ("text", "errors"),
    [
        (
            "#clsoe",
            "line 1: #clsoe: unknown command (known: #close, #resolve, #reopen, #assign,"
            " #priority, #queue, #tag, #untag, #cc, #notspam, #note)",
        ),
        ("#close now", "line 1: #close: takes no argument (got 'now')"),
        ("#note please", "line 1: #note: takes no argument (got 'please')"),
        ("#priority", "line 1: #priority: takes one priority name"),
        ("#priority very high", "line 1: #priority: takes one priority name"),
        ("#queue", "line 1: #queue: takes one queue name"),
        ("#tag", "line 1: #tag: takes one or more words"),
        ("#untag a,b", "line 1: #untag: not a tag: 'a,b' (letters, digits, '_', '-', '.')"),
        ("#assign bob", "line 1: #assign: not an email address: 'bob'"),
        ("#assign a@x.com b@x.com", "line 1: #assign: takes one address, or 'me'"),
        (
            "#",
            "line 1: #: unknown command (known: #close, #resolve, #reopen, #assign, #priority,"
            " #queue, #tag, #untag, #cc, #notspam, #note)",
        ),
        ("#close\n#reopen", "line 2: #reopen conflicts with #close on line 1"),
        ("#priority low\n\n#priority high", "line 3: #priority conflicts with #priority on line 1"),
        ("#cc", "line 1: #cc: takes 'add' or 'remove', then one or more email addresses"),
        (
            "#cc carol@example.org",
            "line 1: #cc: takes 'add' or 'remove', then one or more email addresses",
        ),
        (
            "#cc + carol@example.org",
            "line 1: #cc: takes 'add' or 'remove', then one or more email addresses",
        ),
        ("#cc add", "line 1: #cc: add takes one or more email addresses"),
        ("#cc remove , <>", "line 1: #cc: remove takes one or more email addresses"),
        ("#cc add carol", "line 1: #cc: not an email address: 'carol'"),
        (
            "#cc add carol@example.org bob@@example.org",
            "line 1: #cc: not an email address: 'bob@@example.org'",
        ),
        ("#cc add x@nowhere.invalid", "line 1: #cc: not an email address: 'x@nowhere.invalid'"),
        ("#cc add Carol <carol@example.org>", "line 1: #cc: not an email address: 'Carol'"),
        (
            "#cc add carol@example.org\n#cc remove Carol@example.org",
            "line 2: #cc remove carol@example.org conflicts with #cc add carol@example.org on line 1",
        ),
        ("#notspam please", "line 1: #notspam: takes no argument (got 'please')"),
        ("#notspam\n#notspam", "line 2: #notspam conflicts with #notspam on line 1"),
    ],
)
def test_syntax_errors(text: str, errors: str) -> None:
    assert parse(text, AGENT) == CommandErrors((errors,))


def test_every_error_is_reported_at_once() -> None:
    result = read_agent_mail(
        "#close\n#priority hgih\n#frobnicate\n#reopen\n#assign carol@example.com\n\nHello",
        AGENT,
        KNOWN,
    )
    assert result == CommandErrors(
        (
            "line 2: #priority: unknown priority 'hgih' (known: urgent, high, normal, low)",
            "line 3: #frobnicate: unknown command (known: #close, #resolve, #reopen, #assign,"
            " #priority, #queue, #tag, #untag, #cc, #notspam, #note)",
            "line 4: #reopen conflicts with #close on line 1",
            "line 5: #assign: carol@example.com is not an agent of any queue",
        )
    )


@pytest.mark.parametrize(
    ("text", "errors"),
    [
        (
            "#close\n#priority hgih",
            ("line 2: #priority: unknown priority 'hgih' (known: urgent, high, normal, low)",),
        ),
        ("#queue billing", ("line 1: #queue: unknown queue 'billing' (known: general, security)",)),
        (
            "#assign carol@example.com",
            ("line 1: #assign: carol@example.com is not an agent of any queue",),
        ),
        (
            "#cc add carol@example.org Bob@example.com",
            ("line 1: #cc: bob@example.com is an agent: agents are never on a ticket's Cc",),
        ),
        (
            "#queue nope\n#priority nope",
            (
                "line 1: #queue: unknown queue 'nope' (known: general, security)",
                "line 2: #priority: unknown priority 'nope' (known: urgent, high, normal, low)",
            ),
        ),
    ],
)
def test_names_unknown_to_the_rules(text: str, errors: tuple[str, ...]) -> None:
    assert read_agent_mail(text, AGENT, KNOWN) == CommandErrors(errors)


def test_names_are_spelt_as_the_rules_file_does() -> None:
    result = read_agent_mail(
        "#priority HIGH\n#queue Security\n#assign Bob@Example.com", AGENT, KNOWN
    )
    assert result == AgentMail(
        (SetPriority("high", 1), SetQueue("security", 2), Assign("bob@example.com", 3)),
        note=False,
        text="",
    )


def test_cc_and_notspam_pass_the_check() -> None:
    text = "#notspam\n#cc add carol@example.org\n#cc remove bob@example.com\n\nWelcome, Carol."
    assert read_agent_mail(text, AGENT, KNOWN) == AgentMail(
        (NotSpam(1), CcAdd("carol@example.org", 2), CcRemove("bob@example.com", 3)),
        note=False,
        text="Welcome, Carol.",
    )


def test_several_errors_on_cc_lines_are_told_at_once() -> None:
    result = read_agent_mail(
        "#cc add carol\n#cc drop dave@example.org\n#cc add alice@example.com", AGENT, KNOWN
    )
    assert result == CommandErrors(
        (
            "line 1: #cc: not an email address: 'carol'",
            "line 2: #cc: takes 'add' or 'remove', then one or more email addresses",
            "line 3: #cc: alice@example.com is an agent: agents are never on a ticket's Cc",
        )
    )


def test_assign_me_from_someone_who_is_not_an_agent() -> None:
    assert check(AgentMail((Assign("carol@example.com", 1),), False, ""), KNOWN) == CommandErrors(
        ("line 1: #assign: carol@example.com is not an agent of any queue",)
    )


def test_a_reply_composed_by_mutt() -> None:
    """mutt's reply (tests/mails/replies/mutt_commands.eml): new_text, then the commands."""
    raw = (Path(__file__).parent / "mails" / "replies" / "mutt_commands.eml").read_bytes()
    mail = parse_mail(raw)
    result = read_agent_mail(new_text(mail.text), mail.from_addr, KNOWN)
    assert result == AgentMail(
        (SetPriority("high", 1), Tag(("vip", "billing"), 2)),
        note=False,
        text="Hi Bob,\n\nplease clear your browser cache and sign in again.\n\nAlice",
    )


# -- requesters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "sender", "closes"),
    [
        ("#close", "bob@example.org", True),
        ("\n  #Close \nthanks, solved", "Bob@Example.org", True),
        ("＃close", "bob@example.org", True),
        ("#close", "carol@example.org", False),  # a Cc participant may not
        ("thanks\n#close", "bob@example.org", False),  # not the first line
        ("#close please", "bob@example.org", False),
        ("#closed", "bob@example.org", False),
        ("", "bob@example.org", False),
    ],
)
def test_requester_closes(text: str, sender: str, closes: bool) -> None:
    assert requester_closes(text, sender, "bob@example.org") is closes


@pytest.mark.parametrize(
    ("text", "rest"),
    [
        ("#close\nthanks, solved", "thanks, solved"),
        ("\n#close\n\nthanks\n", "thanks"),
        ("#close", ""),
    ],
)
def test_without_first_line(text: str, rest: str) -> None:
    assert without_first_line(text) == rest


@pytest.mark.parametrize(
    ("subject", "asks"),
    [
        ("status", True),
        ("Status", True),
        ("  STATUS?  ", True),
        ("My  Tickets", True),
        ("Re: my tickets", True),
        ("回复: 我的工单", True),
        ("RE: 回复：工单状态", True),
        ("[MT-7] status", True),  # the tag does not count either
        ("工单状态？", True),
        ("status of my order", False),
        ("my ticket", False),
        ("", False),
    ],
)
def test_status_request(subject: str, asks: bool) -> None:
    assert is_status_request(subject, STATUS_SUBJECTS, "MT") is asks


def test_status_subjects_come_from_the_settings() -> None:
    assert is_status_request("Ticket-Übersicht", ("Ticket-Übersicht",), "MT")
    assert not is_status_request("status", ("Ticket-Übersicht",), "MT")
