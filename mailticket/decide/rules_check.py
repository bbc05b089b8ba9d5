"""``mailticket rules check``: every problem of a rules file, then its inline ``tests:``.

An inline test's mail goes through the real parser (``mail.parse``), written inline or
read from an .eml file next to the rules file, so a test routes exactly what a mail from
outside would. Templates named by rules are checked only when the caller says how to
look them up (the rules module itself knows nothing of the templates directory).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path

from mailticket.decide.rules import OwnAddresses, Routing, RuleSet, validate
from mailticket.decide.rules_schema import Expect, InlineMail, RuleTest
from mailticket.decide.yamlsource import Located, load_bytes, read_file
from mailticket.errors import MailRejected
from mailticket.parse.mail import InboundMail, parse

TEST_DATE = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass
class CheckReport:
    problems: list[str] = field(default_factory=list)  # "file:line: message"
    rules: RuleSet | None = None
    tests_run: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def check_file(
    path: Path,
    template_exists: Callable[[str], bool] | None = None,
    *,
    own: OwnAddresses | None = None,
) -> CheckReport:
    """Validate ``path``; when it is valid, check templates and run its inline tests.

    ``own``: the support and comment addresses, which no queue may name as a person."""
    try:
        content = read_file(path)
        located = load_bytes(content, str(path))
    except ValueError as exc:
        return CheckReport([str(exc)])
    rules, problems = validate(located, content, own=own)
    report = CheckReport([p.text for p in problems], rules)
    if rules is None:
        return report
    if template_exists is not None:
        report.problems += missing_templates(rules, located, template_exists)
    for index, test in enumerate(rules.spec.tests):
        report.tests_run += 1
        failure = run_test(rules, test, path.parent)
        if failure:
            line = located.line(("tests", index))
            report.problems.append(
                f"{located.name}:{line}: test {index + 1}{_named(test)}: {failure}"
            )
    return report


def _named(test: RuleTest) -> str:
    return f" ({test.name})" if test.name else ""


def missing_templates(
    rules: RuleSet, located: Located, template_exists: Callable[[str], bool]
) -> list[str]:
    problems = []
    for index, rule in enumerate(rules.spec.rules):
        name = rule.then.template
        if name is not None and not template_exists(name):
            line = located.line(("rules", index, "then", "template"))
            problems.append(
                f"{located.name}:{line}: rule {rule.name!r}: then.template: no template {name!r} "
                f"({name}.txt.j2 in the templates directory)"
            )
    return problems


def run_test(rules: RuleSet, test: RuleTest, base: Path) -> str | None:
    """None when the routing is as expected, else what differs and what matched."""
    try:
        mail = _test_mail(test, base)
    except (OSError, MailRejected) as exc:
        return f"cannot read the mail: {exc}"
    routing = rules.route(mail)
    differences = _differences(test.expect, routing)
    if not differences:
        return None
    matched = "; ".join(routing.matched) or "no rule"
    return f"{'; '.join(differences)} (matched: {matched})"


def _test_mail(test: RuleTest, base: Path) -> InboundMail:
    if test.file is not None:
        return parse((base / test.file).read_bytes())
    assert test.mail is not None
    return parse(build_test_mail(test.mail))


def build_test_mail(spec: InlineMail) -> bytes:
    """The inline mail as a real message: the same bytes a mail client would send."""
    message = EmailMessage()
    message["From"] = spec.from_
    message["To"] = ", ".join(spec.to)
    if spec.cc:
        message["Cc"] = ", ".join(spec.cc)
    message["Subject"] = spec.subject
    message["Date"] = format_datetime(TEST_DATE)
    message["Message-ID"] = "<rules-test@mailticket.invalid>"
    for name, value in spec.headers.items():
        message[name] = value
    message.set_content(spec.body or "\n")
    for filename in spec.attachments:
        message.add_attachment(
            b"inline test attachment",
            maintype="application",
            subtype="octet-stream",
            filename=filename,
        )
    return message.as_bytes(policy=SMTP)


def _differences(expect: Expect, routing: Routing) -> list[str]:
    pairs: list[tuple[str, object, object]] = [
        ("queue", expect.queue, routing.queue),
        ("priority", expect.priority, routing.priority),
        ("assign", expect.assign, routing.assignee),
        ("template", expect.template, routing.template),
        ("no_ack", expect.no_ack, routing.no_ack),
        ("drop", expect.drop, routing.drop),
        ("tags", _sorted(expect.tags), _sorted(routing.tags)),
        ("fields", expect.fields, dict(routing.fields)),
        ("rules", expect.rules, routing.rules),
    ]
    return [
        f"expected {name} {_show(wanted)}, got {_show(got)}"
        for name, wanted, got in pairs
        if wanted is not None and wanted != got
    ]


def _sorted(tags: tuple[str, ...] | None) -> list[str] | None:
    return sorted(tags) if tags is not None else None


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    return "none" if value is None else str(value)
