"""Decide what a mail means before anything is written (pure, given a read-only view).

``decide`` answers: automatic or not and why, which ticket and why, who the sender is
to that ticket, how a new ticket is routed, and which automatic mails to send. Intake
applies the Decision in one transaction; ``mailticket explain`` prints it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal, Protocol

from mailticket.guard import Verdict, classify
from mailticket.mail import InboundMail
from mailticket.rules import Routing, RuleSet
from mailticket.secret_scan import NO_SECRETS, SECRET_TAG, SecretReport, masked_mail, scan_mail
from mailticket.settings import TicketSettings
from mailticket.threads import MessageIdSigner, ThreadMatch, find_thread

REOPENABLE = frozenset({"pending", "resolved"})
AUTO_REPLY_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class TicketFacts:
    number: int
    status: str
    queue: str
    requester: str
    participants: frozenset[str]
    closed_at: datetime | None


class StoreView(Protocol):
    """What decide() may read. Implemented over a session, or in memory in tests."""

    def ticket(self, number: int) -> TicketFacts | None: ...
    def ticket_for_message_ids(self, message_ids: Sequence[str]) -> int | None: ...
    def auto_replies_since(self, address: str, since: datetime) -> int: ...
    def undeliverable(self, address: str, now: datetime) -> bool: ...


@dataclass(frozen=True, slots=True)
class Answer:
    template: str
    to: str
    automatic: bool


Action = Literal["new", "append", "bounce", "ignore"]


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    thread: ThreadMatch
    action: Action
    ticket: int | None  # the existing ticket for append / bounce
    kind: str  # request, reply, agent, unverified, auto, bounce, ignored
    linked_to: int | None = None
    routing: Routing | None = None
    status_change: str | None = None
    answers: tuple[Answer, ...] = ()
    notes: tuple[str, ...] = ()
    secrets: SecretReport = NO_SECRETS  # private keys / recovery phrases found (masked for agents)


@dataclass(frozen=True, slots=True)
class Context:
    settings: TicketSettings
    rules: RuleSet
    signer: MessageIdSigner
    now: datetime
    notify: bool = True  # False for bulk import without --notify, and for mail before `since`

    @property
    def own_addresses(self) -> frozenset[str]:
        own = {self.settings.support_address, self.settings.comment_address or ""}
        return frozenset(a.lower() for a in own if a)


def decide(mail: InboundMail, view: StoreView, ctx: Context) -> Decision:
    """The whole decision for one mail; rules and ``extract`` only ever see it masked."""
    secrets = scan_mail(mail.text, mail.html, mail.subject)
    if not secrets:
        return _decide(mail, view, ctx)
    decision = _decide(masked_mail(mail), view, ctx)
    routing = decision.routing
    if routing is not None and SECRET_TAG not in routing.tags:
        routing = replace(routing, tags=(*routing.tags, SECRET_TAG))
    return replace(decision, secrets=secrets, routing=routing)


def _decide(mail: InboundMail, view: StoreView, ctx: Context) -> Decision:
    verdict = classify(mail, ctx.own_addresses)
    if verdict.is_bounce:
        return _bounce(mail, verdict, view, ctx)
    references = (*mail.references, *mail.in_reply_to)
    thread = find_thread(
        mail.subject,
        references,
        prefix=ctx.settings.prefix,
        signer=ctx.signer,
        lookup=view.ticket_for_message_ids,
    )
    facts = view.ticket(thread.ticket) if thread.ticket is not None else None
    if thread.ticket is not None and facts is None:
        thread = ThreadMatch(None, f"{thread.evidence}, but no such ticket: new ticket")
    if facts is not None:
        return _on_ticket(mail, verdict, thread, facts, view, ctx)
    if verdict.automatic and not _bulk_only(verdict):
        return Decision(verdict, thread, "ignore", None, "ignored", notes=verdict.reasons)
    return _new_ticket(mail, verdict, thread, view, ctx, linked_to=None)


def _bulk_only(verdict: Verdict) -> bool:
    """List and bulk mail may be a real request (stored as a ticket, never answered)."""
    return all(r.startswith(("Precedence", "mailing list")) for r in verdict.reasons)


def _bounce(mail: InboundMail, verdict: Verdict, view: StoreView, ctx: Context) -> Decision:
    original = mail.bounce.original_message_id if mail.bounce else None
    number = view.ticket_for_message_ids([original]) if original else None
    evidence = f"delivery report about {original}" if original else "delivery report"
    if number is None:
        thread = ThreadMatch(None, f"{evidence}, not about a mail of ours")
        return Decision(verdict, thread, "ignore", None, "ignored", notes=verdict.reasons)
    return Decision(verdict, ThreadMatch(number, evidence), "bounce", number, "bounce")


def _on_ticket(
    mail: InboundMail,
    verdict: Verdict,
    thread: ThreadMatch,
    facts: TicketFacts,
    view: StoreView,
    ctx: Context,
) -> Decision:
    sender = mail.from_addr
    is_agent = sender in ctx.rules.agents_of(facts.queue)
    if not is_agent and sender not in facts.participants:
        return _foreign(mail, verdict, thread, facts, view, ctx)
    if _closed_too_long(facts, ctx):
        note = f"ticket closed more than {ctx.settings.reopen_window} ago: new linked ticket"
        decision = _new_ticket(mail, verdict, thread, view, ctx, linked_to=facts.number)
        return _with_note(decision, note)
    if verdict.automatic:
        return Decision(verdict, thread, "append", facts.number, "auto", notes=verdict.reasons)
    if is_agent:
        return Decision(verdict, thread, "append", facts.number, "agent")
    reopen = facts.status in REOPENABLE or facts.status == "closed"
    return Decision(
        verdict, thread, "append", facts.number, "reply", status_change="open" if reopen else None
    )


def _foreign(
    mail: InboundMail,
    verdict: Verdict,
    thread: ThreadMatch,
    facts: TicketFacts,
    view: StoreView,
    ctx: Context,
) -> Decision:
    note = f"{mail.from_addr or 'unknown sender'} is not a participant of ticket {facts.number}"
    if ctx.settings.foreign_reply == "note":
        return Decision(
            verdict, thread, "append", facts.number, "unverified", notes=(f"{note}: note",)
        )
    decision = _new_ticket(mail, verdict, thread, view, ctx, linked_to=facts.number)
    return _with_note(decision, f"{note}: new linked ticket")


def _closed_too_long(facts: TicketFacts, ctx: Context) -> bool:
    if facts.status != "closed" or facts.closed_at is None:
        return False
    return ctx.now - facts.closed_at > ctx.settings.reopen_window


def _new_ticket(
    mail: InboundMail,
    verdict: Verdict,
    thread: ThreadMatch,
    view: StoreView,
    ctx: Context,
    *,
    linked_to: int | None,
) -> Decision:
    routing = ctx.rules.route(mail)
    answers, notes = _answers(mail, verdict, routing, view, ctx)
    return Decision(
        verdict,
        thread,
        "new",
        None,
        "request",
        linked_to=linked_to,
        routing=routing,
        answers=answers,
        notes=notes,
    )


def _answers(
    mail: InboundMail, verdict: Verdict, routing: Routing, view: StoreView, ctx: Context
) -> tuple[tuple[Answer, ...], tuple[str, ...]]:
    """The acknowledgement and the agents' notifications, minus what the guards forbid."""
    if not ctx.notify or routing.drop:
        reason = "dropped by the rules" if routing.drop else "silent intake (import/since)"
        return (), (f"no mail sent: {reason}",)
    agents = tuple(
        Answer("agent_new", agent, automatic=False)
        for agent in ctx.rules.agents_of(routing.queue)
        if not view.undeliverable(agent, ctx.now)
    )
    forbidden = _ack_forbidden(mail, verdict, routing, view, ctx)
    if forbidden:
        return agents, (f"no acknowledgement: {forbidden}",)
    return (Answer(routing.template, mail.from_addr, automatic=True), *agents), ()


def _ack_forbidden(
    mail: InboundMail, verdict: Verdict, routing: Routing, view: StoreView, ctx: Context
) -> str | None:
    if verdict.automatic:
        return "automatic mail (" + "; ".join(verdict.reasons) + ")"
    if routing.no_ack:
        return "no_ack rule"
    if view.undeliverable(mail.from_addr, ctx.now):
        return f"{mail.from_addr} bounced recently"
    sent = view.auto_replies_since(mail.from_addr, ctx.now - AUTO_REPLY_WINDOW)
    if sent >= ctx.settings.max_auto_replies_per_sender:
        return f"{sent} automatic answers to {mail.from_addr} in 24 h (cap)"
    return None


def _with_note(decision: Decision, note: str) -> Decision:
    return replace(decision, notes=(note, *decision.notes))
