"""Routing: every condition and action by table, the walk's order semantics, extraction."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP

import pytest

from mailticket.decide.rules import Routing, RuleSet, parse_rules
from mailticket.parse.mail import InboundMail, parse
from tests.conftest import ROOT, build_mail

HEAD = """\
version: 1
queues:
  general: {agents: [agent@example.com]}
  security: {agents: [oncall@example.com]}
  payments: {agents: [pay@example.com]}
defaults: {queue: general, priority: normal}
priorities:
  urgent: {first_response: 2h}
  high: {first_response: 8h}
  normal: {first_response: 24h}
  low: {first_response: 72h}
"""


def rules(body: str) -> RuleSet:
    return parse_rules(HEAD + "rules:\n" + body)


def one_rule(condition: str) -> RuleSet:
    return rules(f"  - name: r\n    if: {condition}\n    then: {{queue: security}}\n")


def mail(**kwargs: object) -> InboundMail:
    return parse(build_mail(**kwargs))  # type: ignore[arg-type]


def with_attachment(filename: str) -> InboundMail:
    message = EmailMessage()
    message["From"] = "a@customer.example"
    message["To"] = "support@example.org"
    message["Subject"] = "see attached"
    message.set_content("the screenshot\n")
    message.add_attachment(b"\x89PNG", maintype="image", subtype="png", filename=filename)
    return parse(message.as_bytes(policy=SMTP))


BASE: dict[str, object] = {
    "sender": "Alice Liddell <alice@customer.example>",
    "to": "support@example.org",
    "subject": "Cannot log in",
    "body": "Hello, I cannot log in since this morning.\n",
}

# (condition, mail changes, routed to security?, what matched)
CONDITIONS = [
    ("{subject: {contains: [login, 'log in']}}", {}, True, "subject contains 'log in'"),
    ("{subject: {contains: LOG IN}}", {}, True, "subject contains 'LOG IN'"),
    ("{subject: {contains: [password]}}", {}, False, None),
    ("{subject: {contains: 被盗}}", {"subject": "账户被盗了"}, True, "subject contains '被盗'"),
    # one script written, both found (Big5 and Hong Kong/Taiwan mail is traditional)
    (
        "{subject: {contains: 账号被锁}}",
        {"subject": "我的帳號被鎖了"},
        True,
        "subject contains '账号被锁' as '帳號被鎖'",
    ),
    (
        "{subject: {contains: 帳號被鎖}}",
        {"subject": "我的账号被锁了"},
        True,
        "subject contains '帳號被鎖' as '账号被锁'",
    ),
    (
        "{subject: {contains: 账号被锁}}",
        {"subject": "账號被锁"},
        True,
        "subject contains '账号被锁' as '账號被锁'",
    ),
    ("{subject: {contains: 账号被锁}}", {"subject": "账号没锁"}, False, None),
    ("{subject: {equals: 账号被锁}}", {"subject": "帳號被鎖"}, True, "subject equals '账号被锁'"),
    ("{body: {contains: morning}}", {}, True, "body contains 'morning'"),
    ("{text: {contains: morning}}", {}, True, "body contains 'morning'"),
    ("{text: {contains: cannot}}", {}, True, "subject contains 'cannot'"),
    ("{subject: {matches: '^Cannot'}}", {}, True, "subject matches '^Cannot' ('Cannot')"),
    ("{subject: {matches: '^cannot'}}", {}, False, None),
    ("{subject: {matches: '(?i)^cannot'}}", {}, True, "subject matches '(?i)^cannot' ('Cannot')"),
    (
        "{body: {matches: ['x{3}', 'since \\w+']}}",
        {},
        True,
        "body matches 'since \\w+' ('since this')",
    ),
    ("{subject: {equals: 'cannot LOG in'}}", {}, True, "subject equals 'cannot LOG in'"),
    ("{subject: {equals: 'cannot'}}", {}, False, None),
    ("{from: {equals: alice@customer.example}}", {}, True, "from equals 'alice@customer.example'"),
    ("{from: {contains: liddell}}", {}, True, "from contains 'liddell'"),
    (
        "{from: {domain: customer.example}}",
        {},
        True,
        "from domain 'customer.example' (alice@customer.example)",
    ),
    ("{from: {domain: example}}", {}, True, "from domain 'example' (alice@customer.example)"),
    ("{from: {domain: mer.example}}", {}, False, None),
    ("{from: {domain: sub.customer.example}}", {}, False, None),
    (
        "{from: {domain: '@customer.example'}}",
        {},
        True,
        "from domain 'customer.example' (alice@customer.example)",
    ),
    (
        "{to: {domain: example.org}}",
        {"to": "x@a.example, support@example.org"},
        True,
        "to domain 'example.org' (support@example.org)",
    ),
    (
        "{cc: {equals: boss@customer.example}}",
        {"cc": "Boss <boss@customer.example>"},
        True,
        "cc equals 'boss@customer.example'",
    ),
    ("{cc: {equals: boss@customer.example}}", {}, False, None),
    (
        "{header: {name: X-Mailer, contains: outlook}}",
        {"headers": {"X-Mailer": "Microsoft Outlook 16"}},
        True,
        "header x-mailer contains 'outlook'",
    ),
    (
        "{header: {name: X-Mailer}}",
        {"headers": {"X-Mailer": "Foxmail"}},
        True,
        "header X-Mailer present",
    ),
    ("{header: {name: X-Mailer}}", {}, False, None),
    (
        "{header: {name: Reply-To, domain: vip.example}}",
        {"headers": {"Reply-To": "b@vip.example"}},
        True,
        "header reply-to domain 'vip.example' (b@vip.example)",
    ),
    ("{has_attachment: false}", {}, True, "no attachment"),
    ("{has_attachment: true}", {}, False, None),
    ("{language: en}", {}, True, "language en"),
    (
        "{language: [zh]}",
        {"subject": "无法登录", "body": "今天早上开始无法登录账户。\n"},
        True,
        "language zh",
    ),
    ("{language: zh}", {}, False, None),
    (
        "{any: [{subject: {contains: x1}}, {body: {contains: morning}}]}",
        {},
        True,
        "body contains 'morning'",
    ),
    ("{any: [{subject: {contains: x1}}, {body: {contains: x2}}]}", {}, False, None),
    (
        "{all: [{subject: {contains: log}}, {body: {contains: morning}}]}",
        {},
        True,
        "subject contains 'log' and body contains 'morning'",
    ),
    ("{all: [{subject: {contains: log}}, {body: {contains: x2}}]}", {}, False, None),
    ("{not: {subject: {contains: password}}}", {}, True, "not subject contains any of 'password'"),
    ("{not: {subject: {contains: log}}}", {}, False, None),
    ("{subject: {contains: log}, from: {domain: other.example}}", {}, False, None),
    (
        "{subject: {contains: log}, from: {domain: customer.example}}",
        {},
        True,
        "from domain 'customer.example' (alice@customer.example) and subject contains 'log'",
    ),
    ("{subject: {contains: log, matches: 'x$'}}", {}, False, None),
]


@pytest.mark.parametrize(("condition", "changes", "hit", "why"), CONDITIONS)
def test_condition(condition: str, changes: dict[str, object], hit: bool, why: str | None) -> None:
    routing = one_rule(condition).route(mail(**{**BASE, **changes}))
    assert routing.queue == ("security" if hit else "general")
    assert routing.matched == ((f"r: {why}",) if hit else ())


def test_has_attachment_names_the_files() -> None:
    routing = one_rule("{has_attachment: true}").route(with_attachment("tx.png"))
    assert routing.matched == ("r: has_attachment (tx.png)",)


def test_defaults_when_nothing_matches() -> None:
    assert rules(
        "  - name: r\n    if: {subject: {contains: zzz}}\n    then: {queue: security}\n"
    ).route(mail()) == Routing(queue="general", priority="normal")


# (then, routing fields expected)
ACTIONS = [
    ("{queue: payments}", {"queue": "payments"}),
    ("{priority: urgent}", {"priority": "urgent"}),
    ("{tags: vip}", {"tags": ("vip",)}),
    ("{tags: [vip, 中文]}", {"tags": ("vip", "中文")}),
    ("{assign: Lead@Example.com}", {"assignee": "lead@example.com"}),
    ("{template: ack_vip}", {"template": "ack_vip"}),
    ("{no_ack: true}", {"no_ack": True}),
    ("{drop: true}", {"drop": True}),
    ("{extract: {since: 'since (?P<when>\\w+ \\w+)'}}", {"fields": (("since", "this morning"),)}),
    ("{extract: {word: 'log \\w+'}}", {"fields": (("word", "log in"),)}),
    ("{extract: {nothing: 'zzz+'}}", {"fields": ()}),
]


@pytest.mark.parametrize(("then", "expected"), ACTIONS)
def test_action(then: str, expected: dict[str, object]) -> None:
    routing = rules(f"  - name: r\n    then: {then}\n").route(mail())
    wanted = {
        "queue": "general",
        "priority": "normal",
        "matched": ("r: every mail",),
        "rules": ("r",),
    }
    assert routing == Routing(**{**wanted, **expected})  # type: ignore[arg-type]


WALK = """\
  - name: first
    if: {subject: {contains: log}}
    then: {queue: payments, priority: low, tags: [a, b], assign: one@example.com, extract: {w: 'C\\w+'}}
  - name: second
    if: {body: {contains: morning}}
    then: {queue: security, tags: [b, c], no_ack: true, extract: {w: 'm\\w+', h: 'H\\w+'}}
  - name: third
    if: {body: {contains: zzz}}
    then: {queue: general, tags: [never]}
  - name: fourth
    if: {from: {domain: customer.example}}
    then: {priority: high, assign: two@example.com, no_ack: false}
    stop: true
  - name: fifth
    then: {tags: [after-stop]}
"""


def test_every_match_applies_in_order_until_stop() -> None:
    routing = rules(WALK).route(mail())
    assert routing.queue == "security"  # later queue overrides
    assert routing.priority == "high"
    assert routing.tags == ("a", "b", "c")  # tags accumulate, once each
    assert routing.assignee == "two@example.com"
    assert routing.no_ack is False  # an explicit later value overrides
    assert routing.fields == (("w", "Cannot"), ("h", "Hello"))  # first value per field stays
    assert routing.rules == ("first", "second", "fourth")
    assert routing.matched[0] == "first: subject contains 'log'"


def test_a_stop_rule_that_does_not_match_does_not_stop() -> None:
    text = "  - name: s\n    if: {subject: {contains: zzz}}\n    stop: true\n" + (
        "  - name: t\n    then: {tags: [t]}\n"
    )
    assert rules(text).route(mail()).tags == ("t",)


EXTRACTION = [
    ("'0x[0-9a-fA-F]{64}'", "tx 0x" + "ab" * 32 + " done", "0x" + "ab" * 32),
    ("'(?i)version[: ]*(?P<v>\\d+(\\.\\d+)+)'", "App Version: 3.10.2 on iOS", "3.10.2"),
    ("'(?P<v>\\d+)x|(?P<w>y+)'", "yyy", "yyy"),  # a named group that took no part: whole match
    ("'\\p{Han}+'", "账户 abc", "账户"),
]


@pytest.mark.parametrize(("pattern", "body", "value"), EXTRACTION)
def test_extract(pattern: str, body: str, value: str) -> None:
    routing = rules(f"  - name: r\n    then: {{extract: {{f: {pattern}}}}}\n").route(
        mail(subject="help", body=body + "\n")
    )
    assert routing.fields == (("f", value),)


def test_extract_prefers_the_subject_and_caps_the_value() -> None:
    ruleset = rules("  - name: r\n    then: {extract: {n: '#\\d+', long: 'L+'}}\n")
    routing = ruleset.route(mail(subject="order #12", body="order #34 " + "L" * 500 + "\n"))
    assert dict(routing.fields) == {"n": "#12", "long": "L" * 200}


def test_pathological_regex_on_a_large_body_still_routes() -> None:
    """(a+)+$ backtracks exponentially in Python's re; RE2 answers in one pass.

    (?m): under RE2, a bare $ is the very end of the text, and a body ends with a newline.
    """
    ruleset = one_rule("{body: {matches: '(?m)(a+)+$'}}")
    routing = ruleset.route(mail(body="a" * 200_000 + "b\n"))
    assert routing.queue == "general"
    assert ruleset.route(mail(body="x" + "a" * 200_000)).queue == "security"


def test_contains_is_plain_text_not_a_regex() -> None:
    ruleset = one_rule("{subject: {contains: ['a.b', '(x']}}")
    assert ruleset.route(mail(subject="axb")).queue == "general"
    assert ruleset.route(mail(subject="see (x here")).queue == "security"


def test_first_due_uses_the_priority_service_level() -> None:
    from datetime import UTC, datetime, timedelta

    ruleset = rules("  - name: r\n    then: {priority: urgent}\n")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    due = ruleset.first_due("urgent", now)
    assert due is not None and due.at == now + timedelta(hours=2)
    assert ruleset.first_due("nonexistent", now) is None


def test_first_due_counts_business_hours_of_the_calendar() -> None:
    from datetime import UTC, datetime

    text = (
        "version: 1\nqueues: {general: {}}\n"
        "priorities: {normal: {first_response: 2h}}\n"
        "calendar: {timezone: Asia/Shanghai, hours: {mon-fri: '09:00-18:00'}, holidays: [2026-10-05]}\n"
    )
    ruleset = parse_rules(text)
    friday_evening = datetime(2026, 10, 2, 9, 40, tzinfo=UTC)  # Fri 17:40 in Shanghai
    due = ruleset.first_due("normal", friday_evening)
    assert due is not None
    assert due.at == datetime(2026, 10, 6, 2, 40, tzinfo=UTC)  # Tue 10:40 in Shanghai
    assert "holiday" in due.derivation


def test_a_big5_mail_in_traditional_characters_routes_like_simplified() -> None:
    """The shipped rules list simplified words; a Big5 mail writes 帳號被鎖 for 账号被锁."""
    message = EmailMessage()
    message["From"] = "chen@mail.example.tw"
    message["To"] = "support@example.org"
    message["Subject"] = "帳號被鎖"
    message.set_content("我的帳號被鎖了，無法登入，請幫忙。\n", charset="big5")
    parsed = parse(message.as_bytes(policy=SMTP))
    assert "帳號被鎖" in parsed.text
    shipped = parse_rules((ROOT / "rules.yaml").read_text(encoding="utf-8"))
    routing = shipped.route(parsed)
    assert (routing.queue, routing.priority) == ("accounts", "high")
    assert "locked" in routing.tags
