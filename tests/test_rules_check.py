"""`rules check` as a library: inline tests through the real parser, templates, the shipped file."""

from __future__ import annotations

import json
import os
import shutil
import signal
import smtplib
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mailticket.decide.rules import OwnAddresses
from mailticket.decide.rules_check import build_test_mail, check_file
from mailticket.errors import ConfigError
from mailticket.parse.mail import parse
from mailticket.runtime.core import RulesHolder
from tests.conftest import ROOT, build_mail, make_settings
from tests.conftest import RULES as GOOD_RULES
from tests.daemon_process import DaemonProcess
from tests.dovecot import free_port
from tests.test_cli import run

MAILS = Path(__file__).parent / "mails" / "rules"

RULES = """\
version: 1
queues:
  general: {agents: [agent@example.com]}
  payments: {agents: [pay@example.com]}
priorities:
  high: {first_response: 8h}
  normal: {first_response: 24h}
rules:
  - name: withdrawals
    if: {text: {contains: [提币, withdraw]}}
    then:
      queue: payments
      tags: [transaction]
      extract: {tx_hash: '0x[0-9a-fA-F]{64}', app_version: '版本\\s*(?P<v>\\d+(\\.\\d+)+)'}
  - name: not arrived
    if:
      all:
        - text: {contains: [提币, withdraw]}
        - text: {contains: [没到账, not arrived]}
    then: {priority: high}
  - name: foxmail
    if: {header: {name: X-Mailer, contains: foxmail}}
    then: {tags: [foxmail], template: ack}
  - name: attachment
    if: {has_attachment: true}
    then: {tags: [attachment]}
tests:
  - file: mails/withdrawal_gb2312.eml
    expect:
      queue: payments
      priority: high
      tags: [transaction, foxmail]
      fields:
        tx_hash: '0x9a8b7c6d5e4f30211203f4e5d6c7b8a99a8b7c6d5e4f30211203f4e5d6c7b8a9'
        app_version: 4.1.0
      rules: [withdrawals, not arrived, foxmail]
  - name: english
    mail: {from: a@b.example, subject: Withdraw not arrived, headers: {X-Mailer: Foxmail 7}}
    expect: {queue: payments, priority: high, tags: [transaction, foxmail]}
  - mail: {subject: see screenshot, attachments: [shot.png]}
    expect: {tags: [attachment], rules: [attachment]}
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "mails").mkdir(exist_ok=True)
    shutil.copy(MAILS / "withdrawal_gb2312.eml", tmp_path / "mails")
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_inline_and_file_tests_pass(tmp_path: Path) -> None:
    report = check_file(write(tmp_path, RULES))
    assert report.problems == []
    assert report.tests_run == 3
    assert report.rules is not None


def test_a_failing_test_names_its_line_what_differs_and_what_matched(tmp_path: Path) -> None:
    text = RULES.replace(
        "    expect: {queue: payments, priority: high, tags: [transaction, foxmail]}",
        "    expect: {queue: general, priority: high, tags: [transaction]}",
    )
    path = write(tmp_path, text)
    assert check_file(path).problems == [
        f"{path}:37: test 2 (english): expected queue general, got payments; "
        "expected tags [transaction], got [foxmail, transaction] "
        "(matched: withdrawals: subject contains 'withdraw'; "
        "not arrived: subject contains 'withdraw' and subject contains 'not arrived'; "
        "foxmail: header x-mailer contains 'foxmail')"
    ]


def test_expected_fields_and_rules_are_compared_exactly(tmp_path: Path) -> None:
    text = RULES.replace("        app_version: 4.1.0\n", "").replace(
        "      rules: [withdrawals, not arrived, foxmail]", "      rules: [withdrawals]"
    )
    problems = check_file(write(tmp_path, text)).problems
    assert len(problems) == 1
    assert ":28: test 1: expected fields {tx_hash: 0x9a8b" in problems[0]
    assert "got {tx_hash: 0x9a8b" in problems[0] and "app_version: 4.1.0}" in problems[0]
    assert (
        "; expected rules [withdrawals], got [withdrawals, not arrived, foxmail] (" in problems[0]
    )


def test_a_missing_mail_file_fails_its_test(tmp_path: Path) -> None:
    path = write(tmp_path, RULES.replace("mails/withdrawal_gb2312.eml", "mails/nope.eml"))
    (problem,) = check_file(path).problems
    assert problem.startswith(f"{path}:28: test 1: cannot read the mail: ")
    assert "nope.eml" in problem


def test_tests_do_not_run_when_the_file_is_invalid(tmp_path: Path) -> None:
    path = write(
        tmp_path, RULES.replace("queue: payments\n      tags", "queue: paymnts\n      tags")
    )
    report = check_file(path)
    assert report.tests_run == 0
    assert report.problems == [
        f"{path}:12: rule 'withdrawals': then.queue: unknown queue 'paymnts' (known: general, payments)"
    ]


def test_templates_are_checked_when_the_caller_can_look_them_up(tmp_path: Path) -> None:
    path = write(tmp_path, RULES.replace("template: ack}", "template: ack_vip}"))
    assert check_file(path).problems == []  # no lookup given: not checked
    assert check_file(path, lambda name: name == "ack").problems == [
        f"{path}:23: rule 'foxmail': then.template: no template 'ack_vip' "
        "(ack_vip.txt.j2 in the templates directory)"
    ]


def test_unreadable_file(tmp_path: Path) -> None:
    (problem,) = check_file(tmp_path / "missing.yaml").problems
    assert problem.startswith(f"{tmp_path / 'missing.yaml'}:1: cannot read: ")


# -- our own addresses are nobody's: check, start, reload -----------------------------------

OWN = OwnAddresses("support@example.com", "support-notes@example.com")


@pytest.mark.parametrize(
    ("queues", "problem"),
    [
        (
            "  general: {agents: [agent@example.com, Support@Example.com]}\n",
            "3: queue general: agent support@example.com is the support address",
        ),
        (
            "  general:\n    agents: [agent@example.com]\n"
            "    escalate_to: support-notes@example.com\n",
            "5: queue general: escalate_to support-notes@example.com is the comment address",
        ),
    ],
)
def test_a_queue_naming_our_own_address_is_refused(
    tmp_path: Path, queues: str, problem: str
) -> None:
    """Notices to our own address come back as our own mail and are dropped: nobody hears."""
    path = tmp_path / "rules.yaml"
    path.write_text(f"version: 1\nqueues:\n{queues}", encoding="utf-8")
    assert check_file(path).problems == []  # the owner's addresses unknown: not checked
    assert check_file(path, own=OWN).problems == [f"{path}:{problem}"]
    with pytest.raises(ConfigError, match=problem):
        RulesHolder(path, own=OWN)  # at start


def test_a_reload_naming_our_own_address_keeps_the_last_good_rules(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(GOOD_RULES.replace("second@", "third@"), encoding="utf-8")
    holder = RulesHolder(path, own=OwnAddresses("second@example.com"))
    version = holder.current.version
    path.write_text(GOOD_RULES, encoding="utf-8")
    assert not holder.reload()
    assert holder.current.version == version


def test_the_shipped_rules_pass_their_own_tests() -> None:
    templates = ROOT / "templates"
    report = check_file(
        ROOT / "rules.yaml",
        lambda name: (templates / f"{name}.txt.j2").is_file(),
        own=OwnAddresses("support@example.com", "support-notes@example.com"),  # README, example
    )
    assert report.problems == []
    assert report.rules is not None
    spec = report.rules.spec
    assert set(spec.queues) >= {"general", "accounts", "payments", "security", "feedback"}
    languages: dict[str, set[str]] = {rule.name: set() for rule in spec.rules}
    for test in spec.tests:
        assert test.mail is not None  # the shipped file must not depend on files beside it
        mail = parse(build_test_mail(test.mail))
        for name in report.rules.route(mail).rules:
            languages[name].add(mail.language)
    one_language = {"language zh": {"zh"}, "partner exchange": {"en"}}
    assert languages == {name: one_language.get(name, {"zh", "en"}) for name in languages}


# -- a file with no queue, refused everywhere: check, start, reload ------------------------

EMPTY_FILES = ["", "# nothing yet\n", "{}\n", "version: 1\n", "version: 1\nqueues: {}\n"]


@pytest.mark.parametrize("text", EMPTY_FILES)
def test_rules_check_refuses_a_file_without_queues(tmp_path: Path, text: str) -> None:
    make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    rules = tmp_path / "rules.yaml"
    rules.write_text(text, encoding="utf-8")
    result = run(tmp_path, "rules", "check")
    assert result.returncode == 1
    (line,) = result.stdout.decode().splitlines()
    assert line.startswith(f"{rules}:") and line.split(":")[1].isdigit(), line
    assert "empty" in line or "queues" in line, line


def test_the_daemon_does_not_start_on_an_empty_rules_file(tmp_path: Path) -> None:
    make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    (tmp_path / "rules.yaml").write_text("# to be written\n", encoding="utf-8")
    result = run(tmp_path, "serve")
    assert result.returncode == 78
    assert f"{tmp_path / 'rules.yaml'}:1: the file is empty" in result.stderr.decode()


HACKED = (
    "rules:\n  - name: hacked\n    if: {subject: {contains: hacked}}\n"
    "    then: {queue: security, priority: urgent}\n"
)


def test_the_daemon_keeps_its_rules_when_the_file_is_emptied(tmp_path: Path) -> None:
    port = free_port()
    make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", smtp={"port": port})
    rules = tmp_path / "rules.yaml"
    rules.write_text(GOOD_RULES + HACKED, encoding="utf-8")
    with DaemonProcess(tmp_path, port) as daemon:
        rules.write_text("", encoding="utf-8")
        os.kill(daemon.pid, signal.SIGHUP)
        wait_for(lambda: "rules refused" in daemon.log(), daemon.log)
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail("alice@customer.example", ["support@example.org"],
                            build_mail(subject="my account was hacked"))  # fmt: skip
    assert daemon.exit_code == 0, daemon.log()
    assert f"{rules}:1: the file is empty" in daemon.log()
    rules.write_text(GOOD_RULES, encoding="utf-8")  # every command refuses the empty file
    listed = json.loads(run(tmp_path, "tickets", "list", "--json").stdout)
    assert [(t["queue"], t["priority"]) for t in listed] == [("security", "urgent")]


def wait_for(condition: Callable[[], bool], log: Callable[[], str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, log()
        time.sleep(0.1)
