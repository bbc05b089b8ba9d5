"""``mailticket explain``: the whole decision for one mail, printed instead of applied.

The same ``decide`` intake runs, over the same read-only view of the store, inside a
session that is rolled back: nothing is written, no outbox row, no secret generated,
no migration run. A database without the current schema is explained as an empty one.
What it prints of the mail is masked as ``tickets show`` masks it (private keys and
recovery phrases) unless ``raw`` is asked for; rules only ever see the masked mail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlmodel import Session, col, select

from mailticket import store
from mailticket.decide import agent_auth
from mailticket.decide.decision import (
    Context,
    Decision,
    StoreView,
    TicketFacts,
    agent_addresses,
    decide,
)
from mailticket.decide.decision_parts import GuardHistory, GuardWindows, Pending
from mailticket.decide.rules import RuleSet
from mailticket.decide.secret_scan import masked_mail
from mailticket.decide.threads import MessageIdSigner
from mailticket.errors import MailRejected, TemporaryFailure
from mailticket.parse.mail import InboundMail, parse
from mailticket.settings import Settings
from mailticket.store import seen, session_view
from mailticket.store.models import Event, Setting
from mailticket.units import format_duration

NO_SECRET = b"no secret yet: no signed Message-ID can be ours"


class EmptyView:
    """A store with nothing in it, for a database that has no schema yet."""

    def ticket(self, number: int) -> TicketFacts | None:
        return None

    def ticket_for_message_ids(self, message_ids: Sequence[str]) -> int | None:
        return None

    def requester_of(self, number: int) -> str | None:
        return None

    def undeliverable(self, address: str, now: datetime) -> bool:
        return False

    def guard_history(
        self, address: str, ticket: int | None, now: datetime, windows: GuardWindows
    ) -> GuardHistory:
        return GuardHistory(None, None, 0, 0, 0, 0)

    def received_on_ticket(self, number: int, since: datetime, limit: int) -> int:
        return 0

    def opened_by(self, address: str, since: datetime, limit: int) -> int:
        return 0

    def pending_confirmation(self, number: int, message_ids: Sequence[str]) -> Pending | None:
        return None


@dataclass(frozen=True, slots=True)
class Explained:
    mail: InboundMail
    decision: Decision | None  # None: intake would store nothing (seen before)
    rules: RuleSet
    now: datetime
    notes: tuple[str, ...]


def explain(
    settings: Settings, rules: RuleSet, raw: bytes, now: datetime, *, show_secrets: bool = False
) -> dict[str, Any]:
    """The decision for ``raw`` as the JSON shape of ``explain --json``; secrets masked
    unless ``show_secrets``."""
    try:
        mail = parse(raw, max_attachment_size=settings.tickets.max_attachment_size)
    except MailRejected as exc:
        return {"outcome": "quarantined", "error": str(exc)}
    found = _decide(settings, rules, mail, now)
    if not show_secrets:
        found = replace(found, mail=masked_mail(found.mail))
    return as_dict(found, settings.tickets.prefix)


def _decide(settings: Settings, rules: RuleSet, mail: InboundMail, now: datetime) -> Explained:
    missing = store.database_missing(settings.database.url)
    if missing is not None:  # explain writes nothing: no database file is created
        note = "the database is empty: explained as an empty store"
        return _explained(settings, rules, mail, now, EmptyView(), None, [note])
    engine = store.make_engine(
        settings.database.url, busy_timeout=settings.database.busy_timeout.total_seconds()
    )
    try:
        with Session(engine) as session:
            try:
                return _in_session(session, engine, settings, rules, mail, now)
            finally:
                session.rollback()
    except (OperationalError, InterfaceError) as exc:
        raise TemporaryFailure(f"database unavailable: {str(exc.orig or exc).strip()}") from exc
    finally:
        engine.dispose()


def _in_session(
    session: Session,
    engine: Engine,
    settings: Settings,
    rules: RuleSet,
    mail: InboundMail,
    now: datetime,
) -> Explained:
    notes: list[str] = []
    view: StoreView = EmptyView()
    secret = settings.tickets.secret.encode() if settings.tickets.secret else None
    schema = store.schema_version(engine)
    if schema == store.SCHEMA_HEAD:
        view = session_view.SessionView(session)
        reparse = partial(parse, max_attachment_size=settings.tickets.max_attachment_size)
        if seen.seen(session.connection(), mail, reparse).duplicate:  # as intake decides
            return Explained(mail, None, rules, now, _decided_then(session, mail.message_id))
        row = session.get(Setting, "tickets.secret")
        secret = secret or (row.value.encode() if row else None)
    elif schema is None:
        notes.append("the database is empty: explained as an empty store")
    else:
        notes.append(
            f"the database schema is {schema}, not {store.SCHEMA_HEAD} (mailticket db upgrade): "
            "explained as an empty store"
        )
    return _explained(settings, rules, mail, now, view, secret, notes)


def _explained(
    settings: Settings,
    rules: RuleSet,
    mail: InboundMail,
    now: datetime,
    view: StoreView,
    secret: bytes | None,
    notes: list[str],
) -> Explained:
    secret = secret or (settings.tickets.secret.encode() if settings.tickets.secret else None)
    if secret is None:
        notes.append("no tickets.secret yet: no Message-ID can be verified as ours")
    signer = MessageIdSigner(secret or NO_SECRET, settings.tickets.prefix, "explain.invalid")
    ctx = Context(
        settings.tickets,
        rules,
        signer,
        now,
        require_agent_auth=settings.agents.require_authenticated,
        agent_auth=_agent_auth(settings, rules, mail),
    )
    return Explained(mail, decide(mail, view, ctx), rules, now, tuple(notes))


def _decided_then(session: Session, message_id: str) -> tuple[str, ...]:
    """For a mail stored before: what intake decided then, from the tickets' event logs."""
    query = select(Event).where(Event.message_id == message_id).order_by(col(Event.id))
    then = [f"then: {e.kind} on {e.ticket_number}: {e.detail}" for e in session.exec(query)]
    return ("seen before: intake would store nothing", *then)


def _agent_auth(
    settings: Settings, rules: RuleSet, mail: InboundMail
) -> agent_auth.AuthVerdict | None:
    """As intake checks it (DKIM may ask DNS)."""
    if not settings.agents.require_authenticated or mail.from_addr not in agent_addresses(rules):
        return None
    return agent_auth.authenticate(mail, settings.agents.trusted_authserv_id)


def as_dict(found: Explained, prefix: str) -> dict[str, Any]:
    mail, decision = found.mail, found.decision
    head: dict[str, Any] = {
        "message_id": mail.message_id,
        "from": mail.from_addr,
        "subject": mail.subject,
        "language": mail.language,
        "rules_version": found.rules.version,
    }
    if decision is None:
        return {**head, "outcome": "duplicate", "notes": list(found.notes)}
    routing = decision.routing
    return {
        **head,
        "outcome": "ignored" if decision.action == "ignore" else "stored",
        "automatic": decision.verdict.automatic,
        "automatic_reasons": list(decision.verdict.reasons),
        "thread": {"ticket": decision.thread.ticket, "evidence": decision.thread.evidence},
        "action": decision.action,
        "kind": decision.kind,
        "ticket": _tag(prefix, decision.ticket),
        "linked_to": _tag(prefix, decision.linked_to),
        "status_change": decision.status_change,
        "changes": _changes(decision),
        "authentication": decision.authentication,
        "secrets": list(decision.secrets.kinds),
        "routing": None if routing is None else _routing(routing, found),
        "answers": [
            {
                "template": a.template,
                "to": a.to,
                "cc": list(a.cc),
                "automatic": a.automatic,
                "language": mail.language,
            }
            for a in decision.answers
        ],
        "notes": [*found.notes, *decision.notes],
    }


def _changes(decision: Decision) -> dict[str, Any]:
    """An agent's commands, as they would be applied."""
    changes = decision.changes
    found: dict[str, Any] = {
        "assignee": changes.assignee,
        "priority": changes.priority,
        "queue": changes.queue,
        "tags_added": list(changes.tags_added),
        "tags_removed": list(changes.tags_removed),
    }
    return {key: value for key, value in found.items() if value}


def _routing(routing: Any, found: Explained) -> dict[str, Any]:
    first_response = found.rules.first_response(routing.priority)
    due = found.rules.first_due(routing.priority, found.now)
    return {
        "queue": routing.queue,
        "priority": routing.priority,
        "tags": list(routing.tags),
        "assignee": routing.assignee,
        "template": routing.template,
        "no_ack": routing.no_ack,
        "drop": routing.drop,
        "rules": list(routing.rules),
        "matched": list(routing.matched),
        "fields": dict(routing.fields),
        "first_response": format_duration(first_response) if first_response else None,
        "due_at": due.at.isoformat() if due else None,
        "due_derivation": due.derivation if due else None,
    }


def _tag(prefix: str, number: int | None) -> str | None:
    return f"{prefix}-{number}" if number is not None else None


def as_lines(report: dict[str, Any]) -> list[str]:
    """The human text of ``explain``: one fact per line, the rules indented."""
    if report["outcome"] == "quarantined":
        return [f"quarantined: {report['error']}"]
    lines = [
        f"mail       {report['message_id']} from {report['from'] or '(no sender)'}",
        f"subject    {report['subject']}",
        f"language   {report['language']}",
    ]
    if report["outcome"] == "duplicate":
        return lines + [f"note       {n}" for n in report["notes"]]
    reasons = "; ".join(report["automatic_reasons"])
    lines.append(f"automatic  {'yes: ' + reasons if report['automatic'] else 'no'}")
    lines.append(f"thread     {report['thread']['evidence']}")
    lines.append(f"action     {_action(report)}")
    if report["authentication"]:
        lines.append(f"agent      {report['authentication']}")
    if report["secrets"]:
        kinds = ", ".join(kind.replace("_", " ") for kind in report["secrets"])
        lines.append(f"secrets    {kinds}: masked for agents, rules and templates")
    lines += [f"change     {name} {value}" for name, value in report["changes"].items()]
    if report["routing"] is not None:
        lines += _routing_lines(report["routing"], report["rules_version"])
    for answer in report["answers"] or [{}]:
        lines.append(f"answer     {_answer(answer)}")
    lines += [f"note       {note}" for note in report["notes"]]
    return lines


def _action(report: dict[str, Any]) -> str:
    action = report["action"]
    if action == "new":
        linked = f", linked to {report['linked_to']}" if report["linked_to"] else ""
        return f"open a new ticket ({report['kind']}{linked})"
    if action == "ignore":
        return "ignore (stored as ignored, no ticket)"
    if action == "status":
        return "answer with the sender's tickets (no ticket)"
    change = f", status -> {report['status_change']}" if report["status_change"] else ""
    return f"{action} to {report['ticket']} as {report['kind']}{change}"


def _routing_lines(routing: dict[str, Any], version: str) -> list[str]:
    lines = [f"rules      version {version}"]
    lines += [f"  matched  {m}" for m in routing["matched"]] or ["  matched  no rule: defaults"]
    lines.append(f"queue      {routing['queue']}")
    sla = f" (first response {routing['first_response']}, due {routing['due_at']})"
    lines.append(f"priority   {routing['priority']}{sla if routing['first_response'] else ''}")
    if routing["due_derivation"]:
        lines.append(f"due        {routing['due_derivation']}")
    lines.append(f"tags       {' '.join(routing['tags']) or '-'}")
    lines.append(f"assignee   {routing['assignee'] or '-'}")
    lines += [f"field      {name} = {value}" for name, value in routing["fields"].items()]
    if routing["drop"]:
        lines.append("drop       stored closed, never answered")
    return lines


def _answer(answer: dict[str, Any]) -> str:
    if not answer:
        return "none"
    who = "automatic answer" if answer["automatic"] else "notification"
    return f"{answer['template']} ({answer['language']}) to {answer['to']} [{who}]"
