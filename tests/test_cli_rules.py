"""`rules check`, `explain` and the extracted fields in `tickets show`, through the real CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mnemonic import Mnemonic
from sqlalchemy import create_engine, inspect, text

from tests.conftest import ROOT, build_mail, make_settings
from tests.test_cli import run

TX = "0x" + "4f5b0e0a4c9e9b3b" * 4


def with_shipped_rules(tmp_path: Path, db_url: str) -> Path:
    """A configured directory whose rules are the shipped rules.yaml."""
    shutil.copy(ROOT / "rules.yaml", tmp_path / "rules.yaml")
    make_settings(tmp_path, db_url)
    return tmp_path


@pytest.fixture
def shipped(tmp_path: Path) -> Path:
    """On SQLite: these tests are about the command, not the database."""
    return with_shipped_rules(tmp_path, f"sqlite:///{tmp_path / 'mailticket.db'}")


def out(result: object) -> str:
    return result.stdout.decode()  # type: ignore[attr-defined, no-any-return]


def test_check_the_shipped_rules(tmp_path: Path) -> None:
    make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    result = run(tmp_path, "rules", "check", str(ROOT / "rules.yaml"))
    assert result.returncode == 0, out(result)
    assert out(result).startswith(f"{ROOT / 'rules.yaml'}: ok: 5 queues, ")
    assert "tests passed (version " in out(result)
    assert not (tmp_path / "db.sqlite").exists()  # checking rules touches no database


def test_check_reports_every_problem_and_exits_1(tmp_path: Path) -> None:
    make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    rules = tmp_path / "rules.yaml"  # the default: tickets.rules_file
    text = rules.read_text(encoding="utf-8")
    rules.write_text(
        text.replace("remind_every: 30m", "remind_every: 30 mins") + "rules:\n"
        "  - name: vip\n"
        "    if: {from: {domian: vip.example}}\n"
        "    then: {queue: vip, template: nope}\n"
        "tests:\n"
        "  - mail: {subject: hi}\n"
        "    expect: {queue: security}\n",
        encoding="utf-8",
    )
    result = run(tmp_path, "rules", "check")
    assert result.returncode == 1
    assert out(result).splitlines() == [
        f"{rules}:7: priorities.urgent.remind_every: not a duration: '30 mins' "
        "(write e.g. 45s, 30m, 8h, 3d)",
        f"{rules}:11: rule 'vip': if.from: unknown key 'domian' (did you mean 'domain'?)",
        f"{rules}:12: rule 'vip': then.queue: unknown queue 'vip' (known: general, security)",
    ]


def test_check_runs_the_inline_tests_and_templates(tmp_path: Path) -> None:
    make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        rules.read_text(encoding="utf-8") + "rules:\n"
        "  - name: vip\n"
        "    if: {from: {domain: vip.example}}\n"
        "    then: {queue: security, template: nope}\n"
        "tests:\n"
        "  - mail: {from: a@vip.example, subject: hi}\n"
        "    expect: {queue: general}\n",
        encoding="utf-8",
    )
    result = run(tmp_path, "rules", "check")
    assert result.returncode == 1
    assert out(result).splitlines() == [
        f"{rules}:12: rule 'vip': then.template: no template 'nope' "
        "(nope.txt.j2 in the templates directory)",
        f"{rules}:14: test 1: expected queue general, got security "
        "(matched: vip: from domain 'vip.example' (a@vip.example))",
    ]


def test_explain_a_mail_matching_several_rules_writes_nothing(shipped: Path) -> None:
    mail = shipped / "mail.eml"
    mail.write_bytes(
        build_mail(
            sender="Ops <ops@desk.partner-exchange.example>",
            subject="Withdrawal not received",
            body=f"Our withdrawal has not arrived.\nTxID: {TX}\nApp version 3.2.1\n",
            message_id="<explain-1@partner.example>",
        )
    )
    result = run(shipped, "explain", str(mail))
    assert result.returncode == 0, result.stderr
    lines = out(result).splitlines()
    assert lines[:6] == [
        "mail       <explain-1@partner.example> from ops@desk.partner-exchange.example",
        "subject    Withdrawal not received",
        "language   en",
        "automatic  no",
        "thread     no tag, no known reference: new ticket",
        "action     open a new ticket (request)",
    ]
    assert lines[6].startswith("rules      version ")
    assert lines[7].startswith("  matched  wallet identifiers: body matches '")
    assert lines[8:18] == [
        "  matched  transactions: subject contains 'withdraw'",
        "  matched  funds not arrived: subject contains 'withdraw' and "
        "subject contains 'not received'",
        "  matched  partner exchange: from domain 'partner-exchange.example' "
        "(ops@desk.partner-exchange.example)",
        "queue      payments",
        lines[12],
        lines[13],
        "tags       transaction missing-funds partner",
        "assignee   -",
        f"field      tx_hash = {TX}",
        "field      app_version = 3.2.1",
    ]
    assert lines[12].startswith("priority   high (first response 8h, due 20")
    assert lines[13].startswith("due        received ") and ", 8 hours → " in lines[13]
    assert lines[18:] == [
        "answer     ack_payment (en) to ops@desk.partner-exchange.example [automatic answer]",
        "answer     agent_new (en) to payments@example.com [notification]",
        "note       the database is empty: explained as an empty store",
    ]
    assert not (shipped / "outbox").exists()
    listed = run(shipped, "tickets", "list", "--json")  # migrates the empty database
    assert json.loads(listed.stdout) == []


def test_explain_json_follows_the_thread_and_shows_fields(tmp_path: Path, db_url: str) -> None:
    shipped = with_shipped_rules(tmp_path, db_url)
    assert run(shipped, "db", "upgrade").returncode == 0  # ingest never creates a database
    first = build_mail(
        subject="充值未到账",
        body=f"充值一直没到账，交易哈希 {TX}\n",
        message_id="<first@customer.example>",
    )
    assert run(shipped, "ingest", stdin=first).returncode == 0
    reply = shipped / "reply.eml"
    reply.write_bytes(
        build_mail(
            subject="Re: [MT-1] 充值未到账", body="还是没到\n", message_id="<r@customer.example>"
        )
    )
    before = _counts(db_url)
    result = run(shipped, "explain", "--json", str(reply))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["outcome"] == "stored"
    assert report["automatic"] is False
    assert report["thread"] == {"ticket": 1, "evidence": report["thread"]["evidence"]}
    assert "MT-1" in report["thread"]["evidence"]
    assert (report["action"], report["kind"], report["ticket"]) == ("append", "reply", "MT-1")
    assert report["routing"] is None
    # the requester's reply is told to the queue's agents, nothing to the requester
    assert [(a["template"], a["to"]) for a in report["answers"]] == [
        ("agent_update", "payments@example.com")
    ]
    assert _counts(db_url) == before and before["ticket"] == 1  # nothing written

    duplicate = json.loads(run(shipped, "explain", "--json", "-", stdin=first).stdout)
    assert duplicate["outcome"] == "duplicate"
    assert duplicate["notes"][0] == "seen before: intake would store nothing"
    then = duplicate["notes"][1:]  # the decision it got then, from the event log
    assert "then: received on 1: request from alice@customer.example via pipe" in then
    assert any(n.startswith("then: routed on 1: queue payments, priority high") for n in then)

    new = run(shipped, "explain", "--json", "-", stdin=first.replace(b"<first@", b"<again@"))
    routing = json.loads(new.stdout)["routing"]
    assert routing["queue"] == "payments" and routing["priority"] == "high"
    assert routing["fields"] == {"tx_hash": TX}
    assert routing["rules"] == [
        "wallet identifiers",
        "language zh",
        "transactions",
        "funds not arrived",
    ]
    assert routing["first_response"] == "8h"

    shown = json.loads(run(shipped, "tickets", "show", "MT-1", "--json").stdout)
    assert shown["fields"] == {"tx_hash": TX}
    text = out(run(shipped, "tickets", "show", "MT-1"))
    assert f"Fields:\n  tx_hash     {TX}\n" in text


def test_explain_an_unreadable_mail(shipped: Path) -> None:
    assert out(run(shipped, "explain", "-", stdin=b"\n\n")) == "quarantined: empty message\n"


def test_explain_with_broken_rules_exits_78(shipped: Path) -> None:
    (shipped / "rules.yaml").write_text("queues: {general: {agents: [nobody]}}\n", "utf-8")
    result = run(shipped, "explain", "-", stdin=build_mail())
    assert result.returncode == 78
    assert b"not an email address: 'nobody'" in result.stderr


def _counts(url: str) -> dict[str, int]:
    """Rows per table: what explain must leave exactly as it found it."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                table: connection.execute(text(f"select count(*) from {table}")).scalar_one()
                for table in inspect(connection).get_table_names()
            }
    finally:
        engine.dispose()


PHRASE = Mnemonic("english").to_mnemonic(bytes(range(16)))  # a valid 12-word phrase
KEY = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"


def test_explain_masks_secrets_as_tickets_show_does(shipped: Path) -> None:
    mail = shipped / "mail.eml"
    mail.write_bytes(
        build_mail(
            subject=f"withdraw failed, key 0x{KEY}",
            body=f"My phrase:\n{PHRASE}\nmy key 0x{KEY}\nTxID: {TX}\n",
        )
    )
    text = out(run(shipped, "explain", str(mail)))
    report = json.loads(run(shipped, "explain", "--json", str(mail)).stdout)
    for shown in (text, json.dumps(report, ensure_ascii=False)):
        assert KEY not in shown
        assert " ".join(PHRASE.split()[3:5]) not in shown
    assert "subject    withdraw failed, key [secret removed: private key]\n" in text
    assert "secrets    private key, mnemonic: masked for agents, rules and templates\n" in text
    assert report["secrets"] == ["private_key", "mnemonic"]
    assert report["routing"]["fields"] == {"tx_hash": TX}  # the labelled TxID stays
    assert "secret-exposed" in report["routing"]["tags"]

    clear = json.loads(run(shipped, "explain", "--json", "--raw", str(mail)).stdout)
    assert clear["subject"] == f"withdraw failed, key 0x{KEY}"
    same = ("queue", "priority", "tags", "rules", "matched", "fields")
    # rules see the masked mail either way
    assert [clear["routing"][k] for k in same] == [report["routing"][k] for k in same]


def test_explain_in_a_folder_without_a_database_writes_nothing(tmp_path: Path) -> None:
    database = tmp_path / "mailticket.db"
    make_settings(tmp_path, f"sqlite:///{database}")
    mail = tmp_path / "question.eml"
    mail.write_bytes(build_mail(subject="help"))
    done = run(tmp_path, "explain", str(mail))
    assert done.returncode == 0, done.stderr
    assert b"the database is empty: explained as an empty store" in done.stdout
    assert not database.exists()
