"""Decide what a mail means before anything is written (pure, given a read-only view).

``decide`` answers: automatic or not and why, which ticket and why, who the sender is
to that ticket, how a new ticket is routed, and which automatic mails to send. Intake
applies the Decision in one transaction; ``mailticket explain`` prints it.
"""

from __future__ import annotations

from dataclasses import replace

from mailticket.decide.agent_commands import is_status_request
from mailticket.decide.budgets import (
    LOOP_TAG,
    Allowed,
    allowed_answers,
    loop_guard,
    notified_agents,
)
from mailticket.decide.decision_parts import (
    Answer,
    Changes,
    Context,
    Decision,
    StoreView,
    TicketFacts,
)
from mailticket.decide.guard import Verdict, classify
from mailticket.decide.replies import Plan, agent_plan, requester_plan
from mailticket.decide.rules import Routing
from mailticket.decide.secret_scan import (
    SECRET_TAG,
    masked_mail,
    scan_inbound,
)
from mailticket.decide.senders import (
    agent_addresses,
    agent_identity,
    audience_of,
    known_names,
    new_participants,
    referenced_ids,
    spam_of,
    to_comment_address,
)
from mailticket.decide.states import MessageKind
from mailticket.decide.threads import (
    ThreadMatch,
    find_thread,
    mentioned_numbers,
)
from mailticket.parse.mail import InboundMail
from mailticket.parse.reply_text import new_text

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


MAX_MENTIONS = 5  # ticket numbers in a new mail's body looked up for a link


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
        return Decision(verdict, thread, "ignore", None, MessageKind.IGNORED, notes=verdict.reasons)
    return _new_ticket(mail, verdict, thread, view, ctx, linked_to=None)


def _asks_for_status(mail: InboundMail, ctx: Context) -> bool:
    settings = ctx.settings
    return bool(mail.from_addr) and is_status_request(
        mail.subject, settings.status_subjects, settings.prefix
    )


def _status_request(mail: InboundMail, verdict: Verdict, view: StoreView, ctx: Context) -> Decision:
    """``status`` / ``我的工单``: the sender's tickets listed in a reply; no ticket opened."""
    thread = ThreadMatch(None, "the subject asks for the sender's tickets: no ticket")
    allowed = allowed_answers((Answer("status", mail.from_addr, automatic=True),), view, ctx)
    return Decision(
        verdict,
        thread,
        "status",
        None,
        MessageKind.STATUS,
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
        return Decision(verdict, thread, "ignore", None, MessageKind.IGNORED, notes=verdict.reasons)
    return Decision(verdict, ThreadMatch(number, evidence), "bounce", number, MessageKind.BOUNCE)


def _on_ticket(
    mail: InboundMail,
    verdict: Verdict,
    thread: ThreadMatch,
    facts: TicketFacts,
    view: StoreView,
    ctx: Context,
) -> Decision:
    sender = mail.from_addr
    identity = agent_identity(mail, facts, ctx)
    if identity.unverified:
        return _unverified_agent(mail, verdict, thread, facts, view, ctx, identity.how)
    is_agent, authentication = identity.agent, identity.how
    if verdict.automatic and not is_agent and not _bulk_only(verdict):
        # an autoresponder or a notice about the ticket, whoever it comes from: kept on
        # it, never a new linked ticket with a notice to every agent
        return Decision(
            verdict, thread, "append", facts.number, MessageKind.AUTO, notes=verdict.reasons
        )
    if not is_agent and sender not in facts.participants:
        return replace(
            _foreign(mail, verdict, thread, facts, view, ctx), authentication=authentication
        )
    if not is_agent and _closed_too_long(facts, ctx):
        note = f"ticket closed more than {ctx.settings.reopen_window} ago: new linked ticket"
        decision = _new_ticket(mail, verdict, thread, view, ctx, linked_to=facts.number)
        return decision.with_note(note)
    spam = "" if is_agent else spam_of(mail, ctx)
    if verdict.automatic or spam:
        notes = (f"spam: {spam}",) if spam else verdict.reasons
        return Decision(
            verdict, thread, "append", facts.number, MessageKind.SPAM if spam else MessageKind.AUTO, notes=notes,
            spam=spam,
        )  # fmt: skip
    audience = audience_of(facts, view, ctx)
    if is_agent:
        text, to_comment, confirmed = mail.text, to_comment_address(mail, ctx), ""
        pending = view.pending_confirmation(facts.number, referenced_ids(mail))
        if pending is not None:  # a reply to agent_confirm applies the mail it asked about
            comment = (ctx.settings.comment_address or "").lower()
            to_comment = bool(comment) and comment in pending.recipients
            text, confirmed = pending.text, pending.request_id
            authentication += f"; confirms {pending.message_id} (reply to {pending.request_id})"
        plan = agent_plan(
            text, sender, facts, known_names(ctx.rules), audience, to_comment_address=to_comment
        )
        decision = _from_plan(plan, verdict, thread, facts, view, ctx, authentication)
        return replace(_extracted(decision, mail, text, ctx), confirmed=confirmed)
    plan = requester_plan(mail.text, sender, facts, audience)
    decision = _from_plan(plan, verdict, thread, facts, view, ctx, authentication)
    added, proposed, notes = new_participants(mail, facts.participants, facts.number, ctx)
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
    fields = ctx.rules.extract(replace(mail, text=new_text(text)))
    if not fields:
        return decision
    return replace(decision, changes=replace(decision.changes, fields=fields))


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
    allowed = allowed_answers((request,) if ask else (), view, ctx, ticket=facts.number)
    return Decision(
        verdict,
        thread,
        "append",
        facts.number,
        MessageKind.UNVERIFIED,
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
    allowed = allowed_answers(plan.answers, view, ctx, ticket=facts.number)
    changes, loop = plan.changes, loop_guard(allowed.answers, facts, view, ctx)
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
        allowed = allowed_answers(told, view, ctx, ticket=facts.number)
        notes = (f"{note}: note", *allowed.notes)
        return Decision(
            verdict,
            thread,
            "append",
            facts.number,
            MessageKind.UNVERIFIED,
            answers=allowed.answers,
            notes=notes,
        )
    decision = _new_ticket(mail, verdict, thread, view, ctx, linked_to=facts.number)
    return decision.with_note(f"{note}: new linked ticket")


def _unverified_note(
    mail: InboundMail, facts: TicketFacts, view: StoreView, ctx: Context
) -> tuple[Answer, ...]:
    """The agents hear of it, marked: its sender is not on the ticket (maybe a colleague of
    the requester, maybe someone guessing ticket numbers); nothing goes to the requester."""
    warning = f"UNVERIFIED: {mail.from_addr or 'an unknown sender'} is not on this ticket."
    text = f"{warning}\n\n{new_text(mail.text)}"
    audience = audience_of(facts, view, ctx)
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
    spam = spam_of(mail, ctx)
    if spam:
        allowed = Allowed((), (f"spam: {spam}: stored, never answered (#notspam releases it)",))
    else:
        allowed = _answers(mail, verdict, routing, view, ctx)
    notes = allowed.notes
    if linked_to is None:
        linked_to, mention = _mentioned_ticket(mail, view, ctx)
        notes = (*mention, *notes)
    added, proposed, cc_notes = new_participants(mail, (), None, ctx)
    return Decision(
        verdict,
        thread,
        "new",
        None,
        MessageKind.REQUEST,
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
    agents, flood = notified_agents(mail, routing, view, ctx)
    if verdict.automatic:
        reason = "automatic mail (" + "; ".join(verdict.reasons) + ")"
        return Allowed(agents, (f"no acknowledgement: {reason}", *flood))
    if routing.no_ack:
        return Allowed(agents, ("no acknowledgement: no_ack rule", *flood))
    allowed = allowed_answers(
        (Answer(routing.template, mail.from_addr, automatic=True),), view, ctx
    )
    pauses = allowed.pauses
    return Allowed((*allowed.answers, *agents), (*allowed.notes, *flood), pauses)
