"""Decide what a mail means before anything is written (pure, given a read-only view).

``decide`` answers: automatic or not and why, which ticket and why, who the sender is
to that ticket, how a new ticket is routed, and which automatic mails to send. Intake
applies the Decision in one transaction; ``mailticket explain`` prints it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal, Protocol

from mailticket.decide import agent_auth
from mailticket.decide.agent_commands import Known, is_status_request
from mailticket.decide.decision_parts import (
    NO_CHANGES,
    Answer,
    Changes,
    GuardHistory,
    GuardWindows,
    TicketFacts,
    Window,
)
from mailticket.decide.guard import Verdict, classify
from mailticket.decide.replies import Audience, Plan, agent_plan, requester_plan
from mailticket.decide.rules import Routing, RuleSet
from mailticket.decide.secret_scan import (
    NO_SECRETS,
    SECRET_TAG,
    SecretReport,
    masked_mail,
    scan_inbound,
)
from mailticket.decide.spam_verdict import spam_verdict
from mailticket.decide.threads import (
    MessageIdSigner,
    ThreadMatch,
    find_thread,
    mentioned_numbers,
    replied_to,
)
from mailticket.parse.mail import InboundMail
from mailticket.parse.reply_text import new_text
from mailticket.settings import SpamSettings, TicketSettings

__all__ = [
    "Answer",
    "Changes",
    "Context",
    "Decision",
    "StoreView",
    "TicketFacts",
    "agent_addresses",
    "decide",
]

AUTO_REPLY_WINDOW = timedelta(hours=24)
MAX_MENTIONS = 5  # ticket numbers in a new mail's body looked up for a link
LOOP_TAG = "loop-suspected"


@dataclass(frozen=True, slots=True)
class Pending:
    """An agent's mail that was not applied, and the request to confirm it."""

    request_id: str  # the agent_confirm mail's Message-ID
    message_id: str  # the unverified mail's
    text: str
    recipients: tuple[str, ...]  # its To and Cc


class StoreView(Protocol):
    """What decide() may read. Implemented over a session, or in memory in tests."""

    def ticket(self, number: int) -> TicketFacts | None: ...
    def ticket_for_message_ids(self, message_ids: Sequence[str]) -> int | None: ...
    def requester_of(self, number: int) -> str | None: ...
    def undeliverable(self, address: str, now: datetime) -> bool: ...
    def guard_history(
        self, address: str, ticket: int | None, now: datetime, windows: GuardWindows
    ) -> GuardHistory: ...
    def received_on_ticket(self, number: int, since: datetime, limit: int) -> int: ...
    def opened_by(self, address: str, since: datetime, limit: int) -> int: ...
    def pending_confirmation(self, number: int, message_ids: Sequence[str]) -> Pending | None: ...


Action = Literal["new", "append", "bounce", "ignore", "status"]


@dataclass(frozen=True, slots=True)
class Pause:
    """An address that used up a budget for automatic answers (``tickets.auto_reply_*``)."""

    address: str
    reason: str


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an automatic answer is not sent; ``pause``: because a budget tripped now."""

    reason: str
    pause: bool = False
    delay: bool = False  # not refused: sent later, as the global budget allows


@dataclass(frozen=True, slots=True)
class Allowed:
    answers: tuple[Answer, ...]
    notes: tuple[str, ...] = ()
    pauses: tuple[Pause, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    thread: ThreadMatch
    action: Action
    ticket: int | None  # the existing ticket for append / bounce
    kind: str  # request, reply, agent, note, commands, refused, unverified, auto, bounce, ignored, status
    linked_to: int | None = None
    routing: Routing | None = None
    status_change: str | None = None
    answers: tuple[Answer, ...] = ()
    notes: tuple[str, ...] = ()
    secrets: SecretReport = NO_SECRETS  # private keys / recovery phrases found (masked for agents)
    changes: Changes = NO_CHANGES  # an agent's commands
    authentication: str = ""  # how a mail from an agent's address was (or was not) trusted
    pauses: tuple[Pause, ...] = ()  # addresses whose automatic answers stop: a budget tripped
    participants: tuple[str, ...] = ()  # Cc that become participants (a verified mail)
    proposed: tuple[str, ...] = ()  # Cc that do not: shown to agents (#cc add)
    spam: str = ""  # the trusted MTA's spam verdict: stored, never answered
    confirmed: str = ""  # the agent_confirm request this mail answered: its mail applied


@dataclass(frozen=True, slots=True)
class Context:
    settings: TicketSettings
    rules: RuleSet
    signer: MessageIdSigner
    now: datetime
    notify: bool = True  # False for bulk import without --notify, and for mail before `since`
    require_agent_auth: bool = True  # agents.require_authenticated
    # the From domain's proof (DKIM, trusted Authentication-Results), checked before the
    # transaction (DNS) for a mail from an agent's address or naming new Cc
    agent_auth: agent_auth.Verdict | None = None
    trusted_source: bool = False  # a trusted relay or IMAP account: its verdict headers count
    spam: SpamSettings | None = None
    authserv_id: str | None = None

    @property
    def own_addresses(self) -> frozenset[str]:
        own = {self.settings.support_address, self.settings.comment_address or ""}
        return frozenset(a.lower() for a in own if a)


def decide(mail: InboundMail, view: StoreView, ctx: Context) -> Decision:
    """The whole decision for one mail; rules and ``extract`` only ever see it masked."""
    secrets = mail.secrets
    if secrets is None:
        secrets = scan_inbound(mail)
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
    if not verdict.automatic and _asks_for_status(mail, ctx):
        return _status_request(mail, verdict, view, ctx)
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


def _asks_for_status(mail: InboundMail, ctx: Context) -> bool:
    settings = ctx.settings
    return bool(mail.from_addr) and is_status_request(
        mail.subject, settings.status_subjects, settings.prefix
    )


def _status_request(mail: InboundMail, verdict: Verdict, view: StoreView, ctx: Context) -> Decision:
    """``status`` / ``我的工单``: the sender's tickets listed in a reply; no ticket opened."""
    thread = ThreadMatch(None, "the subject asks for the sender's tickets: no ticket")
    allowed = _allowed((Answer("status", mail.from_addr, automatic=True),), view, ctx)
    return Decision(
        verdict,
        thread,
        "status",
        None,
        "status",
        answers=allowed.answers,
        notes=allowed.notes,
        pauses=allowed.pauses,
    )


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
    identity = _agent_identity(mail, facts, ctx)
    if identity.unverified:
        return _unverified_agent(mail, verdict, thread, facts, view, ctx, identity.how)
    is_agent, authentication = identity.agent, identity.how
    if verdict.automatic and not is_agent and not _bulk_only(verdict):
        # an autoresponder or a notice about the ticket, whoever it comes from: kept on
        # it, never a new linked ticket with a notice to every agent
        return Decision(verdict, thread, "append", facts.number, "auto", notes=verdict.reasons)
    if not is_agent and sender not in facts.participants:
        return replace(
            _foreign(mail, verdict, thread, facts, view, ctx), authentication=authentication
        )
    if not is_agent and _closed_too_long(facts, ctx):
        note = f"ticket closed more than {ctx.settings.reopen_window} ago: new linked ticket"
        decision = _new_ticket(mail, verdict, thread, view, ctx, linked_to=facts.number)
        return _with_note(decision, note)
    spam = "" if is_agent else _spam(mail, ctx)
    if verdict.automatic or spam:
        notes = (f"spam: {spam}",) if spam else verdict.reasons
        return Decision(
            verdict, thread, "append", facts.number, "spam" if spam else "auto", notes=notes,
            spam=spam,
        )  # fmt: skip
    audience = _audience(facts, view, ctx)
    if is_agent:
        text, to_comment, confirmed = mail.text, _to_comment_address(mail, ctx), ""
        pending = view.pending_confirmation(facts.number, _references(mail))
        if pending is not None:  # a reply to agent_confirm applies the mail it asked about
            comment = (ctx.settings.comment_address or "").lower()
            to_comment = bool(comment) and comment in pending.recipients
            text, confirmed = pending.text, pending.request_id
            authentication += f"; confirms {pending.message_id} (reply to {pending.request_id})"
        plan = agent_plan(
            text, sender, facts, _known(ctx.rules), audience, to_comment_address=to_comment
        )
        decision = _from_plan(plan, verdict, thread, facts, view, ctx, authentication)
        return replace(_extracted(decision, mail, text, ctx), confirmed=confirmed)
    plan = requester_plan(mail.text, sender, facts, audience)
    decision = _from_plan(plan, verdict, thread, facts, view, ctx, authentication)
    added, proposed, notes = _new_participants(mail, facts.participants, facts.number, ctx)
    return replace(
        _extracted(decision, mail, mail.text, ctx),
        participants=added,
        proposed=proposed,
        notes=(*decision.notes, *notes),
        answers=tuple(replace(a, proposed_cc=proposed) for a in decision.answers),
    )


def _extracted(decision: Decision, mail: InboundMail, text: str, ctx: Context) -> Decision:
    """The fields ``extract`` rules find in what this mail newly says (quotes left out:
    they repeat values the ticket has); a refused mail changes nothing."""
    if decision.kind == "refused":
        return decision
    fields = ctx.rules.route(replace(mail, text=new_text(text))).fields
    if not fields:
        return decision
    return replace(decision, changes=replace(decision.changes, fields=fields))


def _references(mail: InboundMail) -> tuple[str, ...]:
    return (*mail.references, *mail.in_reply_to)


def _spam(mail: InboundMail, ctx: Context) -> str:
    """The spam verdict of the MTA in front, read only on mail it delivered to us."""
    if not ctx.trusted_source or ctx.spam is None or not ctx.spam.enabled:
        return ""
    return spam_verdict(mail.headers, ctx.spam, ctx.authserv_id) or ""


def _new_participants(
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
    proof = _sender_proof(mail, ticket, ctx)
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


def _sender_proof(mail: InboundMail, ticket: int | None, ctx: Context) -> str:
    """How the mail proves its From address, or "" when it does not."""
    if mail.identity_problems:
        return ""
    if ctx.agent_auth is not None and ctx.agent_auth.authenticated:
        return ctx.agent_auth.method
    found = replied_to(_references(mail), mail.from_addr, ctx.signer)
    if found is not None and found[0] == ticket:
        return f"reply to {found[1]}, sent to {mail.from_addr}"
    return ""


def _unverified_agent(
    mail: InboundMail,
    verdict: Verdict,
    thread: ThreadMatch,
    facts: TicketFacts,
    view: StoreView,
    ctx: Context,
    how: str,
) -> Decision:
    """A mail from an agent's address that proves nothing: kept as a note, applied only
    if the agent replies to the request we send to that address (the real agent reads
    it; a forger does not). A mail whose From reads two ways gets no request: the
    address it names may not be the one who wrote it."""
    ask = not verdict.automatic and not mail.identity_problems
    request = Answer(
        "agent_confirm", mail.from_addr, automatic=True, text=new_text(mail.text),
        confirms=mail.message_id,
    )  # fmt: skip
    allowed = _allowed((request,) if ask else (), view, ctx, ticket=facts.number)
    return Decision(
        verdict,
        thread,
        "append",
        facts.number,
        "unverified",
        answers=allowed.answers,
        notes=("not applied: stored as an unverified note", *allowed.notes),
        authentication=how,
        pauses=allowed.pauses,
    )


def _from_plan(
    plan: Plan,
    verdict: Verdict,
    thread: ThreadMatch,
    facts: TicketFacts,
    view: StoreView,
    ctx: Context,
    authentication: str,
) -> Decision:
    allowed = _allowed(plan.answers, view, ctx, ticket=facts.number)
    changes, loop = plan.changes, _loop_guard(allowed.answers, facts, view, ctx)
    answers, notes = allowed.answers, (*plan.notes, *allowed.notes)
    if loop is not None:
        answers, notes = loop.answers, (*notes, *loop.notes)
        if loop.trip:
            changes = replace(changes, tags_added=(*changes.tags_added, LOOP_TAG))
    return Decision(
        verdict,
        thread,
        "append",
        facts.number,
        plan.kind,
        status_change=plan.status,
        answers=answers,
        notes=notes,
        changes=changes,
        authentication=authentication,
        pauses=allowed.pauses,
    )


@dataclass(frozen=True, slots=True)
class _Loop:
    answers: tuple[Answer, ...]
    notes: tuple[str, ...]
    trip: bool  # tag the ticket now (and tell the agents once)


def _loop_guard(
    answers: Sequence[Answer], facts: TicketFacts, view: StoreView, ctx: Context
) -> _Loop | None:
    """Relays and notices stop on a ticket that receives more mail than people write
    (``tickets.ticket_mail_budget``): two autoresponders answering each other through us.
    The ticket is tagged loop-suspected, the agents told once; an agent's ``#untag
    loop-suspected`` lets mail flow again."""
    people = [a for a in answers if not a.automatic]
    if not people:
        return None
    budget = ctx.settings.ticket_mail_budget
    if LOOP_TAG in facts.tags:
        held = tuple(a for a in answers if a.automatic)
        return _Loop(held, (f"{len(people)} relays/notices held: ticket tagged {LOOP_TAG}",), False)
    received = view.received_on_ticket(facts.number, ctx.now - budget.period, budget.limit + 1)
    if received <= budget.limit:
        return None
    why = f"{received - 1}+ mails on the ticket in {budget} (tickets.ticket_mail_budget)"
    team = tuple(dict.fromkeys(a.to for a in people if a.template != "agent_reply"))
    warn = tuple(
        Answer("loop_suspected", to, automatic=False, text=why)
        for to in team or _audience(facts, view, ctx).agents
    )
    kept = (*(a for a in answers if a.automatic), *warn)
    notes = (f"mail loop suspected: {why}: {len(people)} relays/notices held, tagged {LOOP_TAG}",)
    return _Loop(kept, notes, True)


def agents_of_ticket(rules: RuleSet, facts: TicketFacts) -> frozenset[str]:
    """Who writes to a ticket as an agent: its queue's agents, escalate_to, its assignee."""
    queue = rules.queues.get(facts.queue)
    lead = queue.escalate_to if queue is not None else None
    found = {*rules.agents_of(facts.queue), lead or "", facts.assignee or ""}
    return frozenset(address.lower() for address in found if address)


@dataclass(frozen=True, slots=True)
class _Identity:
    agent: bool
    how: str  # for the event log
    unverified: bool = False  # an agent's address, but nothing proves the mail is theirs


def _agent_identity(mail: InboundMail, facts: TicketFacts, ctx: Context) -> _Identity:
    """Whether the mail speaks for an agent of the ticket, and how that was established:
    a DKIM signature or trusted Authentication-Results (``ctx.agent_auth``), or a reply
    to a Message-ID we sent to that very agent on this ticket."""
    sender = mail.from_addr
    if not sender or sender not in agents_of_ticket(ctx.rules, facts):
        return _Identity(False, "")
    if sender == facts.requester:
        return _Identity(False, f"{sender} is this ticket's requester: treated as the requester")
    if mail.identity_problems:
        why = "; ".join(mail.identity_problems)
        return _Identity(False, f"From names agent {sender}, but {why}", unverified=True)
    if not ctx.require_agent_auth:
        return _Identity(True, "agent by From address alone (agents.require_authenticated = false)")
    verdict = ctx.agent_auth
    if verdict is not None and verdict.authenticated:
        return _Identity(True, f"agent authenticated: {verdict.method}")
    found = replied_to(_references(mail), sender, ctx.signer)
    if found is not None and found[0] == facts.number:
        return _Identity(True, f"agent authenticated: reply to {found[1]}, sent to {sender}")
    method = verdict.method if verdict is not None else "not authenticated: no DKIM checked"
    return _Identity(False, f"From names agent {sender}, but {method}", unverified=True)


def _audience(facts: TicketFacts, view: StoreView, ctx: Context) -> Audience:
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


def _known(rules: RuleSet) -> Known:
    return Known(list(rules.queues), list(rules.spec.priorities), agent_addresses(rules))


def _to_comment_address(mail: InboundMail, ctx: Context) -> bool:
    comment = (ctx.settings.comment_address or "").lower()
    return bool(comment) and comment in {*mail.to, *mail.cc}


def _allowed(
    answers: Sequence[Answer], view: StoreView, ctx: Context, ticket: int | None = None
) -> Allowed:
    """The answers the guards let through: no mail on a silent import, no automatic
    answer to an address that bounced, is paused or has used up a budget."""
    if not ctx.notify:
        return Allowed((), ("no mail sent: silent intake (import/since)",) if answers else ())
    kept, notes, pauses = [], [], []
    for answer in answers:
        refused = _automatic_refused(answer.to, view, ctx, ticket) if answer.automatic else None
        if refused is None:
            kept.append(answer)
            continue
        if refused.delay:
            kept.append(replace(answer, delayed=True))
            notes.append(f"{answer.template} to {answer.to} delayed: {refused.reason}")
            continue
        notes.append(f"no {answer.template} to {answer.to}: {refused.reason}")
        if refused.pause:
            pauses.append(Pause(answer.to, refused.reason))
    return Allowed(tuple(kept), tuple(notes), tuple(pauses))


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
        told = () if verdict.automatic else _unverified_note(mail, facts, view, ctx)
        allowed = _allowed(told, view, ctx, ticket=facts.number)
        notes = (f"{note}: note", *allowed.notes)
        return Decision(
            verdict,
            thread,
            "append",
            facts.number,
            "unverified",
            answers=allowed.answers,
            notes=notes,
        )
    decision = _new_ticket(mail, verdict, thread, view, ctx, linked_to=facts.number)
    return _with_note(decision, f"{note}: new linked ticket")


def _unverified_note(
    mail: InboundMail, facts: TicketFacts, view: StoreView, ctx: Context
) -> tuple[Answer, ...]:
    """The agents hear of it, marked: its sender is not on the ticket (maybe a colleague of
    the requester, maybe someone guessing ticket numbers); nothing goes to the requester."""
    warning = f"UNVERIFIED: {mail.from_addr or 'an unknown sender'} is not on this ticket."
    text = f"{warning}\n\n{new_text(mail.text)}"
    audience = _audience(facts, view, ctx)
    return tuple(
        Answer("agent_update", agent, automatic=False, text=text)
        for agent in dict.fromkeys(audience.agents)
        if audience.deliverable(agent)
    )


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
    spam = _spam(mail, ctx)
    if spam:
        allowed = Allowed((), (f"spam: {spam}: stored, never answered (#notspam releases it)",))
    else:
        allowed = _answers(mail, verdict, routing, view, ctx)
    notes = allowed.notes
    if linked_to is None:
        linked_to, mention = _mentioned_ticket(mail, view, ctx)
        notes = (*mention, *notes)
    added, proposed, cc_notes = _new_participants(mail, (), None, ctx)
    return Decision(
        verdict,
        thread,
        "new",
        None,
        "request",
        linked_to=linked_to,
        routing=routing,
        answers=tuple(
            replace(a, proposed_cc=proposed) if a.template == "agent_new" else a
            for a in allowed.answers
        ),
        notes=(*notes, *cc_notes),
        pauses=allowed.pauses,
        participants=added,
        proposed=proposed,
        spam=spam,
    )


def _mentioned_ticket(
    mail: InboundMail, view: StoreView, ctx: Context
) -> tuple[int | None, tuple[str, ...]]:
    """A new mail that names one of the same requester's tickets in its body is linked to it."""
    if not mail.from_addr:
        return None, ()
    for number in mentioned_numbers(mail.text, ctx.settings.prefix)[:MAX_MENTIONS]:
        if view.requester_of(number) == mail.from_addr:
            tag = f"{ctx.settings.prefix}-{number}"
            return number, (f"the body mentions {tag} of the same requester: linked",)
    return None, ()


def _answers(
    mail: InboundMail, verdict: Verdict, routing: Routing, view: StoreView, ctx: Context
) -> Allowed:
    """The acknowledgement and the agents' notifications, minus what the guards forbid."""
    if not ctx.notify or routing.drop:
        reason = "dropped by the rules" if routing.drop else "silent intake (import/since)"
        return Allowed((), (f"no mail sent: {reason}",))
    agents, flood = _notified(mail, routing, view, ctx)
    if verdict.automatic:
        reason = "automatic mail (" + "; ".join(verdict.reasons) + ")"
        return Allowed(agents, (f"no acknowledgement: {reason}", *flood))
    if routing.no_ack:
        return Allowed(agents, ("no acknowledgement: no_ack rule", *flood))
    allowed = _allowed((Answer(routing.template, mail.from_addr, automatic=True),), view, ctx)
    pauses = allowed.pauses
    return Allowed((*allowed.answers, *agents), (*allowed.notes, *flood), pauses)


def _notified(
    mail: InboundMail, routing: Routing, view: StoreView, ctx: Context
) -> tuple[tuple[Answer, ...], tuple[str, ...]]:
    """agent_new to the queue's agents, unless this sender has opened more tickets than
    ``tickets.new_tickets_per_sender`` allows: then the agents get one digest when the
    budget runs out, and nothing for the tickets after it (a flood is one event)."""
    agents = [a for a in ctx.rules.agents_of(routing.queue) if not view.undeliverable(a, ctx.now)]
    budget = ctx.settings.new_tickets_per_sender
    opened = view.opened_by(mail.from_addr, ctx.now - budget.period, budget.limit + 1)
    if not mail.from_addr or opened < budget.limit:
        return tuple(Answer("agent_new", agent, automatic=False) for agent in agents), ()
    why = f"{mail.from_addr} opened {opened + 1}+ tickets in {budget} (tickets.new_tickets_per_sender)"
    if opened > budget.limit:
        return (), (f"no agent_new: {why}",)
    digest = tuple(Answer("agent_digest", agent, automatic=False, text=why) for agent in agents)
    return digest, (f"agent_new replaced by one digest: {why}",)


def _automatic_refused(
    address: str, view: StoreView, ctx: Context, ticket: int | None
) -> Refusal | None:
    """Whether an automatic answer to ``address`` may go: the loop guards (RFC 3834 §2,
    and budgets, since a naive auto-responder answers every answer)."""
    now, settings = ctx.now, ctx.settings
    burst, per_ticket, total = (
        settings.auto_reply_burst,
        settings.auto_reply_per_ticket,
        settings.auto_reply_global,
    )
    windows = GuardWindows(
        day=Window(now - AUTO_REPLY_WINDOW, settings.max_auto_replies_per_sender),
        burst=Window(now - burst.period, burst.limit),
        ticket=Window(now - per_ticket.period, per_ticket.limit),
        total=Window(now - total.period, total.limit),
    )
    seen = view.guard_history(address, ticket, now, windows)
    if seen.bounced_until is not None:
        return Refusal(f"{address} bounced recently")
    if seen.paused_until is not None:
        until = seen.paused_until
        return Refusal(f"automatic answers to {address} paused until {until:%Y-%m-%d %H:%M} UTC")
    if seen.day >= settings.max_auto_replies_per_sender:
        return Refusal(f"{seen.day} automatic answers to {address} in 24 h (cap)", pause=True)
    if seen.burst >= burst.limit:
        return Refusal(f"budget auto_reply_burst {burst} used up by {address}", pause=True)
    if ticket is not None and seen.ticket >= per_ticket.limit:
        why = f"budget auto_reply_per_ticket {per_ticket} used up by {address} on {ticket}"
        return Refusal(why, pause=True)
    if seen.total >= total.limit:  # many people at once (an outage): late, never lost
        return Refusal(f"budget auto_reply_global {total} used up: sent as it allows", delay=True)
    return None


def _with_note(decision: Decision, note: str) -> Decision:
    return replace(decision, notes=(note, *decision.notes))
