"""What a mail on an existing ticket asks for, by who wrote it (pure).

An agent's mail is a public reply (relayed to the requester and the Cc participants), an
internal note (``#note`` first, or sent to ``tickets.comment_address``: to the other
agents only), or only commands; its commands are applied all or none, and a refused one
answers the agent with ``agent_error`` and changes nothing. A requester's mail reopens a
``pending``/``resolved`` ticket, or closes it when its first line is ``#close``; either way
the agents hear of it (``agent_update``). Only the words the sender wrote in this mail are
carried on: quoted history and our own notification's text are cut (``reply_text``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace

from mailticket.decide.agent_commands import (
    Assign,
    CcAdd,
    CcRemove,
    Command,
    CommandErrors,
    Known,
    NotSpam,
    SetPriority,
    SetQueue,
    SetStatus,
    Tag,
    Untag,
    read_agent_mail,
    requester_closes,
    without_first_line,
)
from mailticket.decide.decision_parts import NO_CHANGES, Answer, Changes, TicketFacts
from mailticket.decide.states import MessageKind, TicketStatus
from mailticket.parse.reply_text import new_text

REOPENABLE = frozenset({TicketStatus.PENDING, TicketStatus.RESOLVED, TicketStatus.CLOSED})


@dataclass(frozen=True, slots=True)
class Plan:
    kind: MessageKind  # agent (public reply), note, commands, refused, reply
    status: TicketStatus | None  # the new status, None: unchanged
    changes: Changes = NO_CHANGES
    answers: tuple[Answer, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Audience:
    """Who may hear of a ticket's mail: the agents, and the addresses mail must not go to."""

    agents: Sequence[str]  # the ticket's assignee, else its queue's agents
    team: Sequence[str]  # the queue's agents and the assignee: who reads internal notes
    colleagues: Collection[str]  # every agent of any queue: never a relay's Cc
    own: Collection[str]  # our own addresses
    deliverable: Callable[[str], bool]  # not blocked by a recent bounce
    max_recipients: int = 10  # tickets.max_participants: no mail we send has more


def agent_plan(
    text: str,
    sender: str,
    facts: TicketFacts,
    known: Known,
    audience: Audience,
    *,
    to_comment_address: bool,
) -> Plan:
    """An agent's mail: relay, note or commands; ``text`` is the mail's whole text."""
    read = read_agent_mail(new_text(text), sender, known)
    if isinstance(read, CommandErrors):
        error = Answer("agent_error", sender, automatic=True, errors=read.errors)
        return Plan(
            MessageKind.REFUSED,
            None,
            answers=(error,),
            notes=("commands refused: nothing changed",),
        )
    status, changes = _commands(read.commands, facts)
    over = _over_participants(changes, facts, audience)
    if over is not None:
        error = Answer("agent_error", sender, automatic=True, errors=(over,))
        return Plan(
            MessageKind.REFUSED,
            None,
            answers=(error,),
            notes=("commands refused: nothing changed",),
        )
    note = read.note or to_comment_address
    answers: list[Answer] = []
    notes: tuple[str, ...] = ()
    if read.commands_only:
        kind = MessageKind.COMMANDS
    elif note:
        kind = MessageKind.NOTE
        answers += [
            Answer("agent_note", agent, automatic=False, text=read.text)
            for agent in _others(audience.team, sender, audience)
        ]
    else:
        kind = MessageKind.AGENT
        status = status or TicketStatus.PENDING
        changes = replace(changes, answered=True)
        cc = (*(a for a in facts.cc if a not in changes.cc_removed), *changes.cc_added)
        relay, cut = _relay(read.text, sender, replace(facts, cc=cc), audience)
        answers += [relay] if relay else []
        notes += cut
    if status is None and facts.status == TicketStatus.NEW:
        status = TicketStatus.OPEN  # an agent took it (assigned, noted, commanded)
    if status == facts.status:
        status = None
    if status == TicketStatus.RESOLVED and audience.deliverable(facts.requester):
        answers.append(Answer("resolved", facts.requester, automatic=True))
    if not answers and kind == "agent":
        notes += ("nobody to relay the reply to",)
    return Plan(kind, status, changes, tuple(answers), notes)


def requester_plan(text: str, sender: str, facts: TicketFacts, audience: Audience) -> Plan:
    """A requester's (or Cc participant's) reply: reopen, or ``#close`` by the requester."""
    written = new_text(text)
    if requester_closes(written, sender, facts.requester):
        status: TicketStatus | None = TicketStatus.CLOSED
        written = without_first_line(written)  # agents read what was said, not the command
    else:
        status = TicketStatus.OPEN if facts.status in REOPENABLE else None
    if status == facts.status:
        status = None
    update = [
        Answer("agent_update", agent, automatic=False, text=written)
        for agent in _others(audience.agents, sender, audience)
    ]
    return Plan(MessageKind.REPLY, status, answers=tuple(update))


def _commands(
    commands: Sequence[Command], facts: TicketFacts
) -> tuple[TicketStatus | None, Changes]:
    status: TicketStatus | None = None
    changes = NO_CHANGES
    for command in commands:
        match command:
            case SetStatus(status=wanted):
                status = wanted
            case Assign(agent=agent) if agent != (facts.assignee or "").lower():
                changes = replace(changes, assignee=agent)
            case SetPriority(priority=priority) if priority != facts.priority:
                changes = replace(changes, priority=priority)
            case SetQueue(queue=queue) if queue != facts.queue:
                changes = replace(changes, queue=queue)
            case Tag(words=words):
                changes = replace(changes, tags_added=(*changes.tags_added, *words))
            case Untag(words=words):
                changes = replace(changes, tags_removed=(*changes.tags_removed, *words))
            case CcAdd(address=address) if address not in facts.participants:
                changes = replace(changes, cc_added=(*changes.cc_added, address))
            case CcRemove(address=address) if address in facts.cc:
                changes = replace(changes, cc_removed=(*changes.cc_removed, address))
            case NotSpam() if facts.status == TicketStatus.SPAM:
                status = status or TicketStatus.OPEN
    return status, changes


def _over_participants(changes: Changes, facts: TicketFacts, audience: Audience) -> str | None:
    """Why ``#cc add`` would take the ticket past ``tickets.max_participants``."""
    after = len(facts.participants) + len(changes.cc_added) - len(changes.cc_removed)
    if not changes.cc_added or after <= audience.max_recipients:
        return None
    return (
        f"#cc add: the ticket would have {after} participants, "
        f"over tickets.max_participants ({audience.max_recipients})"
    )


def _relay(
    text: str, sender: str, facts: TicketFacts, audience: Audience
) -> tuple[Answer | None, tuple[str, ...]]:
    """The agent's words to the requester, the other participants in Cc (never more than
    ``max_recipients`` in all: a ticket from before the cap may have more)."""
    excluded = {sender.lower(), *audience.colleagues, *audience.own}
    if not facts.requester or facts.requester in excluded:
        return None, ()
    cc = tuple(address for address in facts.cc if address not in excluded)
    room = max(audience.max_recipients - 1, 0)
    cut = (f"{len(cc) - room} Cc left out: over tickets.max_participants",) if cc[room:] else ()
    relay = Answer(
        "agent_reply", facts.requester, automatic=False, cc=cc[:room], text=text, relayed=True
    )
    return relay, cut


def _others(agents: Sequence[str], sender: str, audience: Audience) -> list[str]:
    own = {sender.lower(), *audience.own}
    return [a for a in dict.fromkeys(agents) if a not in own and audience.deliverable(a)]
