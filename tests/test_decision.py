"""decide() on its own: a mail and what the store knows (in memory) -> the decision.

Literal tables, no database: each row is one case intake meets, and what decide() must
say about it (where it goes, what it changes, who is written to). The same cases run
end to end, through a database and real listeners, in test_intake, test_agents and
test_abuse_smtp; these say what the pure core decides, and why, in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mailticket.decide.agent_auth import AuthVerdict
from mailticket.decide.decision import Context, Decision, decide
from mailticket.decide.decision_parts import GuardHistory, GuardWindows, Pending, TicketFacts
from mailticket.decide.rules import RuleSet, load_rules
from mailticket.decide.threads import MessageIdSigner
from mailticket.parse.mail import parse
from mailticket.settings import TicketSettings
from tests.conftest import RULES, build_mail

NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
REQUESTER = "alice@customer.example"
AGENT = "agent@example.com"
SIGNER = MessageIdSigner(b"test-secret", "MT", "example.org")


@dataclass
class MemoryView:
    """The StoreView decide() reads, as plain data."""

    tickets: dict[int, TicketFacts] = field(default_factory=dict)
    threads: dict[str, int] = field(default_factory=dict)  # a Message-ID on a ticket
    bounced: frozenset[str] = frozenset()
    received: int = 0  # mails on the ticket in its budget's window
    opened: int = 0  # tickets the sender opened in theirs

    def ticket(self, number: int) -> TicketFacts | None:
        return self.tickets.get(number)

    def ticket_for_message_ids(self, message_ids: Sequence[str]) -> int | None:
        return next((self.threads[m] for m in message_ids if m in self.threads), None)

    def requester_of(self, number: int) -> str | None:
        facts = self.tickets.get(number)
        return facts.requester if facts else None

    def undeliverable(self, address: str, now: datetime) -> bool:
        return address in self.bounced

    def guard_history(
        self, address: str, ticket: int | None, now: datetime, windows: GuardWindows
    ) -> GuardHistory:
        blocked = NOW + timedelta(days=30) if address in self.bounced else None
        return GuardHistory(blocked, None, 0, 0, 0, 0)

    def received_on_ticket(self, number: int, since: datetime, limit: int) -> int:
        return self.received

    def opened_by(self, address: str, since: datetime, limit: int) -> int:
        return self.opened

    def pending_confirmation(self, number: int, message_ids: Sequence[str]) -> Pending | None:
        return None


def _ticket(status: str = "open", **changes: Any) -> TicketFacts:
    facts: dict[str, Any] = {
        "number": 1, "status": status, "queue": "general", "requester": REQUESTER,
        "participants": frozenset({REQUESTER}), "closed_at": None, "priority": "normal",
    }  # fmt: skip
    return TicketFacts(**(facts | changes))


ON_TICKET = MemoryView(tickets={1: _ticket()}, threads={"<q1@customer.example>": 1})


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> RuleSet:
    path = Path(tmp_path_factory.mktemp("rules")) / "rules.yaml"
    path.write_text(
        RULES
        + "rules:\n"
        + "  - name: hacked\n"
        + "    if: {subject: {contains: [hacked, 被盗]}}\n"
        + "    then: {queue: security, priority: urgent}\n"
        + "  - name: hash\n"
        + "    if: {text: {matches: ['(?i:txid)\\s*[:：]?\\s*(?P<h>0x[0-9a-f]{64})']}}\n"
        + "    then: {extract: {tx_hash: '(?i:txid)\\s*[:：]?\\s*(?P<h>0x[0-9a-f]{64})'}}\n",
        encoding="utf-8",
    )
    return load_rules(path)


def _decide(
    rules: RuleSet, view: MemoryView, *, auth: AuthVerdict | None = None, **mail: Any
) -> Decision:
    context = Context(
        TicketSettings(support_address="support@example.org"),
        rules,
        SIGNER,
        NOW,
        agent_auth=auth,
    )
    return decide(parse(build_mail(**mail)), view, context)


def _sent(decision: Decision) -> list[tuple[str, str]]:
    return [(a.template, a.to) for a in decision.answers]


AGENTS = [("agent_new", AGENT), ("agent_new", "second@example.com")]
UPDATES = [("agent_update", AGENT), ("agent_update", "second@example.com")]
DKIM = AuthVerdict(True, "dkim pass d=example.com")
TX = "0x" + "ab" * 32

# name, what the store knows, the mail (build_mail's arguments), the agent's proof,
# then what decide() says: action, kind, ticket, status change, mails sent
CASES: list[tuple[str, MemoryView, dict[str, Any], AuthVerdict | None, tuple[Any, ...]]] = [
    (
        "a first mail opens a ticket: ack and the queue's agents",
        MemoryView(),
        {},
        None,
        ("new", "request", None, None, [("ack", REQUESTER), *AGENTS]),
    ),
    (
        "an autoreply opens nothing and is answered by nothing",
        MemoryView(),
        {"headers": {"Auto-Submitted": "auto-replied"}},
        None,
        ("ignore", "ignored", None, None, []),
    ),
    (
        "the status subject lists the sender's tickets",
        MemoryView(),
        {"subject": "status"},
        None,
        ("status", "status", None, None, [("status", REQUESTER)]),
    ),
    (
        "the requester's reply by its tag reopens a pending ticket; the agents hear",
        MemoryView(tickets={1: _ticket("pending")}),
        {"subject": "Re: [MT-1] Cannot log in"},
        None,
        ("append", "reply", 1, "open", UPDATES),
    ),
    (
        "the requester's reply by In-Reply-To, without the tag",
        ON_TICKET,
        {"subject": "Re: Cannot log in", "in_reply_to": "<q1@customer.example>"},
        None,
        ("append", "reply", 1, None, UPDATES),
    ),
    (
        "the requester's #close closes; the agents read that it was closed",
        ON_TICKET,
        {"subject": "Re: [MT-1] Cannot log in", "body": "#close\nThanks!\n"},
        None,
        ("append", "reply", 1, "closed", UPDATES),
    ),
    (
        "a tag naming a ticket that does not exist opens a new one",
        MemoryView(),
        {"subject": "Re: [MT-7] Cannot log in"},
        None,
        ("new", "request", None, None, [("ack", REQUESTER), *AGENTS]),
    ),
    (
        "a stranger's mail on a ticket opens a new linked ticket",
        ON_TICKET,
        {"sender": "mallory@elsewhere.example", "subject": "Re: [MT-1] Cannot log in"},
        None,
        ("new", "request", None, None, [("ack", "mallory@elsewhere.example"), *AGENTS]),
    ),
    (
        "an autoreply naming a ticket stays on it, unanswered",
        ON_TICKET,
        {
            "subject": "Out of office: [MT-1] Cannot log in",
            "headers": {"Auto-Submitted": "auto-replied"},
        },
        None,
        ("append", "auto", 1, None, []),
    ),
    (
        "an agent signed by DKIM: #close closes, nothing to relay",
        ON_TICKET,
        {"sender": AGENT, "subject": "Re: [MT-1] Cannot log in", "body": "#close\n"},
        DKIM,
        ("append", "commands", 1, "closed", []),
    ),
    (
        "an agent signed by DKIM answers: relayed to the requester, ticket pending",
        ON_TICKET,
        {"sender": AGENT, "subject": "Re: [MT-1] Cannot log in", "body": "Try again now.\n"},
        DKIM,
        ("append", "agent", 1, "pending", [("agent_reply", REQUESTER)]),
    ),
    (
        "an agent's From without proof is a note, and the agent is asked to confirm",
        ON_TICKET,
        {"sender": AGENT, "subject": "Re: [MT-1] Cannot log in", "body": "#close\n"},
        AuthVerdict(False, "not authenticated: no signature"),
        ("append", "unverified", 1, None, [("agent_confirm", AGENT)]),
    ),
    (
        "a bad command changes nothing and answers the agent",
        ON_TICKET,
        {"sender": AGENT, "subject": "Re: [MT-1] Cannot log in", "body": "#frobnicate\n"},
        DKIM,
        ("append", "refused", 1, None, [("agent_error", AGENT)]),
    ),
]


@pytest.mark.parametrize(
    ("view", "mail", "auth", "expected"),
    [pytest.param(v, m, a, e, id=name) for name, v, m, a, e in CASES],
)
def test_decide(
    rules: RuleSet,
    view: MemoryView,
    mail: dict[str, Any],
    auth: AuthVerdict | None,
    expected: tuple[Any, ...],
) -> None:
    decision = _decide(rules, view, auth=auth, **mail)
    said = (decision.action, decision.kind, decision.ticket, decision.status_change)
    assert (*said, _sent(decision)) == expected


def test_routing_by_rules_in_either_language(rules: RuleSet) -> None:
    for subject in ("Account hacked!", "账户被盗"):
        routing = _decide(rules, MemoryView(), subject=subject).routing
        assert routing is not None
        assert (routing.queue, routing.priority, routing.rules) == (
            "security",
            "urgent",
            ("hacked",),
        )
    security = _decide(rules, MemoryView(), subject="Account hacked!")
    assert _sent(security) == [("ack", REQUESTER), ("agent_new", "oncall@example.com")]


def test_a_reply_carries_the_fields_its_new_text_names(rules: RuleSet) -> None:
    subject = "Re: [MT-1] Cannot log in"
    said = _decide(rules, ON_TICKET, subject=subject, body=f"My TxID: {TX}\n")
    assert said.changes.fields == (("tx_hash", TX),)
    quoted = _decide(rules, ON_TICKET, subject=subject, body=f"Any news?\n\n> TxID: {TX}\n")
    assert quoted.changes.fields == ()


def test_a_flood_of_new_tickets_from_one_sender_gets_the_agents_a_digest(rules: RuleSet) -> None:
    flood = MemoryView(opened=5)  # tickets.new_tickets_per_sender: 5 in 10 minutes
    assert _sent(_decide(rules, flood)) == [
        ("ack", REQUESTER), ("agent_digest", AGENT), ("agent_digest", "second@example.com"),
    ]  # fmt: skip


def test_a_bounced_requester_gets_no_ack_but_the_agents_hear(rules: RuleSet) -> None:
    view = MemoryView(bounced=frozenset({REQUESTER}))
    said = _decide(rules, view)
    assert _sent(said) == AGENTS
    assert any("bounced" in note for note in said.notes), said.notes


def test_a_ticket_over_its_mail_budget_stops_relaying(rules: RuleSet) -> None:
    over = MemoryView(tickets={1: _ticket()}, received=31)  # tickets.ticket_mail_budget: 30/1h
    said = _decide(rules, over, subject="Re: [MT-1] Cannot log in")
    assert said.changes.tags_added == ("loop-suspected",)
    assert _sent(said) == [("loop_suspected", AGENT), ("loop_suspected", "second@example.com")]
    within = MemoryView(tickets={1: _ticket()}, received=30)
    assert _sent(_decide(rules, within, subject="Re: [MT-1] Cannot log in")) == UPDATES
