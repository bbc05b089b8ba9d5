"""Who is writing, to whom we write: an agent's proof, Cc that may join, a ticket's audience (pure).

Any header can be forged: an agent acts only on a proof (a DKIM signature, trusted
Authentication-Results, or a reply to a Message-ID we sent that very agent), and a Cc
joins only from a mail that proves its From.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from mailticket.decide.agent_commands import Known
from mailticket.decide.decision_parts import (
    Context,
    StoreView,
    TicketFacts,
)
from mailticket.decide.replies import Audience
from mailticket.decide.rules import RuleSet
from mailticket.decide.spam_verdict import spam_verdict
from mailticket.decide.threads import replied_to
from mailticket.parse.mail import InboundMail


def referenced_ids(mail: InboundMail) -> tuple[str, ...]:
    return (*mail.references, *mail.in_reply_to)


def spam_of(mail: InboundMail, ctx: Context) -> str:
    """The spam verdict of the MTA in front, read only on mail it delivered to us."""
    if not ctx.trusted_source or ctx.spam is None or not ctx.spam.enabled:
        return ""
    return spam_verdict(mail.headers, ctx.spam, ctx.authserv_id) or ""


def new_participants(
    mail: InboundMail, known: Collection[str], ticket: int | None, ctx: Context
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(added, proposed, notes) for the Cc of a requester's mail.

    Anyone can write a Cc under a forged From: a Cc joins the ticket (and receives the
    agents' answers) only when the mail proves its From, by a DKIM signature of the From
    domain or by replying to a Message-ID we sent to that address. Otherwise the agents
    see the addresses as proposed and decide (``#cc add``).
    """
    excluded = {*known, mail.from_addr, *ctx.own_addresses, *agent_addresses(ctx.rules)}
    wanted = tuple(a for a in dict.fromkeys(mail.cc) if a and a not in excluded)
    if not wanted:
        return (), (), ()
    proof = sender_proof(mail, ticket, ctx)
    if not proof:
        why = "; ".join(mail.identity_problems) or "the sender is not verified"
        shown = ", ".join(wanted[:10]) + (
            f" and {len(wanted) - 10} more" if len(wanted) > 10 else ""
        )
        return (), wanted[:MAX_PROPOSED], (f"Cc proposed, not added ({why}): {shown}",)
    room = max(ctx.settings.max_participants - len(known) - (0 if known else 1), 0)
    added, over = wanted[:room], wanted[room:]
    notes = [f"participants added ({proof}): {', '.join(added)}"] if added else []
    if over:
        limit = ctx.settings.max_participants
        notes.append(f"{len(over)} Cc not added: tickets.max_participants ({limit}) reached")
    return added, (), tuple(notes)


MAX_PROPOSED = 20  # proposed Cc shown to agents; the rest are only counted


def sender_proof(mail: InboundMail, ticket: int | None, ctx: Context) -> str:
    """How the mail proves its From address, or "" when it does not."""
    if mail.identity_problems:
        return ""
    if ctx.agent_auth is not None and ctx.agent_auth.authenticated:
        return ctx.agent_auth.method
    found = replied_to(referenced_ids(mail), mail.from_addr, ctx.signer)
    if found is not None and found[0] == ticket:
        return f"reply to {found[1]}, sent to {mail.from_addr}"
    return ""


def agents_of_ticket(rules: RuleSet, facts: TicketFacts) -> frozenset[str]:
    """Who writes to a ticket as an agent: its queue's agents, escalate_to, its assignee."""
    queue = rules.queues.get(facts.queue)
    lead = queue.escalate_to if queue is not None else None
    found = {*rules.agents_of(facts.queue), lead or "", facts.assignee or ""}
    return frozenset(address.lower() for address in found if address)


@dataclass(frozen=True, slots=True)
class AgentIdentity:
    agent: bool
    how: str  # for the event log
    unverified: bool = False  # an agent's address, but nothing proves the mail is theirs


def agent_identity(mail: InboundMail, facts: TicketFacts, ctx: Context) -> AgentIdentity:
    """Whether the mail speaks for an agent of the ticket, and how that was established:
    a DKIM signature or trusted Authentication-Results (``ctx.agent_auth``), or a reply
    to a Message-ID we sent to that very agent on this ticket."""
    sender = mail.from_addr
    if not sender or sender not in agents_of_ticket(ctx.rules, facts):
        return AgentIdentity(False, "")
    if sender == facts.requester:
        return AgentIdentity(
            False, f"{sender} is this ticket's requester: treated as the requester"
        )
    if mail.identity_problems:
        why = "; ".join(mail.identity_problems)
        return AgentIdentity(False, f"From names agent {sender}, but {why}", unverified=True)
    if not ctx.require_agent_auth:
        return AgentIdentity(
            True, "agent by From address alone (agents.require_authenticated = false)"
        )
    verdict = ctx.agent_auth
    if verdict is not None and verdict.authenticated:
        return AgentIdentity(True, f"agent authenticated: {verdict.method}")
    found = replied_to(referenced_ids(mail), sender, ctx.signer)
    if found is not None and found[0] == facts.number:
        return AgentIdentity(True, f"agent authenticated: reply to {found[1]}, sent to {sender}")
    method = verdict.method if verdict is not None else "not authenticated: no DKIM checked"
    return AgentIdentity(False, f"From names agent {sender}, but {method}", unverified=True)


def audience_of(facts: TicketFacts, view: StoreView, ctx: Context) -> Audience:
    rules = ctx.rules
    queue = list(rules.agents_of(facts.queue))
    agents = [facts.assignee] if facts.assignee else queue
    return Audience(
        agents=[a.lower() for a in agents],
        team=[a.lower() for a in (*queue, *agents)],
        colleagues=agent_addresses(rules),
        own=ctx.own_addresses,
        deliverable=lambda address: not view.undeliverable(address, ctx.now),
        max_recipients=ctx.settings.max_participants,
    )


def agent_addresses(rules: RuleSet) -> frozenset[str]:
    """Every address that is an agent somewhere: the queues' agents and escalate_to."""
    return rules.agent_addresses


def known_names(rules: RuleSet) -> Known:
    return Known(list(rules.queues), list(rules.spec.priorities), agent_addresses(rules))


def to_comment_address(mail: InboundMail, ctx: Context) -> bool:
    comment = (ctx.settings.comment_address or "").lower()
    return bool(comment) and comment in {*mail.to, *mail.cc}
