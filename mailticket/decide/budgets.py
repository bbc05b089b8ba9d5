"""The budgets that stop mail loops and floods: who may get an automatic answer now, when
a ticket receives more mail than people write, when one sender opens too many tickets (pure).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from mailticket.decide.decision_parts import (
    Answer,
    Context,
    GuardWindows,
    Pause,
    StoreView,
    TicketFacts,
    Window,
)
from mailticket.decide.rules import Routing
from mailticket.decide.senders import audience_of
from mailticket.parse.mail import InboundMail

AUTO_REPLY_WINDOW = timedelta(hours=24)


LOOP_TAG = "loop-suspected"


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
class Loop:
    answers: tuple[Answer, ...]
    notes: tuple[str, ...]
    trip: bool  # tag the ticket now (and tell the agents once)


def allowed_answers(
    answers: Sequence[Answer], view: StoreView, ctx: Context, ticket: int | None = None
) -> Allowed:
    """The answers the guards let through: no mail on a silent import, no automatic
    answer to an address that bounced, is paused or has used up a budget."""
    if not ctx.notify:
        return Allowed((), ("no mail sent: silent intake (import/since)",) if answers else ())
    kept, notes, pauses = [], [], []
    for answer in answers:
        refused = automatic_refused(answer.to, view, ctx, ticket) if answer.automatic else None
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


def automatic_refused(
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


def loop_guard(
    answers: Sequence[Answer], facts: TicketFacts, view: StoreView, ctx: Context
) -> Loop | None:
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
        return Loop(held, (f"{len(people)} relays/notices held: ticket tagged {LOOP_TAG}",), False)
    received = view.received_on_ticket(facts.number, ctx.now - budget.period, budget.limit + 1)
    if received <= budget.limit:
        return None
    why = f"{received - 1}+ mails on the ticket in {budget} (tickets.ticket_mail_budget)"
    team = tuple(dict.fromkeys(a.to for a in people if a.template != "agent_reply"))
    warn = tuple(
        Answer("loop_suspected", to, automatic=False, text=why)
        for to in team or audience_of(facts, view, ctx).agents
    )
    kept = (*(a for a in answers if a.automatic), *warn)
    notes = (f"mail loop suspected: {why}: {len(people)} relays/notices held, tagged {LOOP_TAG}",)
    return Loop(kept, notes, True)


def notified_agents(
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
