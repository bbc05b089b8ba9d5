"""The one way in: raw bytes -> parse -> decide -> one transaction.

Every entry point (SMTP, IMAP, ``ingest``, ``import``, quarantine replay) calls
``Intake.submit``. It returns only after the commit, raises TemporaryFailure when the
store is unavailable (nothing was committed), and never raises for a bad mail: that
mail is stored raw as quarantined and the caller answers success.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from mailticket import store, tickets
from mailticket.decision import Answer, Context, Decision, decide
from mailticket.errors import ParseError, TemporaryFailure
from mailticket.mail import InboundMail, parse
from mailticket.models import Inbound, Ticket
from mailticket.notices import Envelope, Renderer
from mailticket.outbox import enqueue
from mailticket.rules import RuleSet
from mailticket.settings import Settings
from mailticket.threads import MessageIdSigner, with_tag

log = logging.getLogger(__name__)
Outcome = Literal["stored", "duplicate", "quarantined", "ignored"]


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    message_id: str
    ticket: int | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class TicketView:
    """What templates see as ``ticket``."""

    number: int
    tag: str
    subject: str
    status: str
    priority: str
    queue: str
    requester: str
    created_at: datetime
    due_at: datetime | None


class Intake:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        rules: Callable[[], RuleSet],
        renderer: Renderer,
        signer: MessageIdSigner,
        clock: Callable[[], datetime],
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._rules = rules
        self._renderer = renderer
        self._signer = signer
        self._clock = clock
        self._on_commit = on_commit

    def submit(self, raw: bytes, source: str, *, notify: bool = True) -> Result:
        """Store ``raw`` exactly once; returns after the commit."""
        now = self._clock()
        try:
            mail = parse(raw, max_attachment_size=self._settings.tickets.max_attachment_size)
        except ParseError as exc:
            return self._quarantine_unparsed(raw, source, now, f"unparseable: {exc}")
        except Exception as exc:  # a parser bug must not lose the mail
            log.exception("parser failed on a %d-byte mail", len(raw))
            return self._quarantine_unparsed(raw, source, now, f"parser error: {exc!r}")
        return self._submit_parsed(mail, source, now, notify=notify)

    def replay(self, inbound_id: int) -> Result:
        """Run a quarantined mail through intake again (after a fix).

        The quarantined row is replaced in the same transaction that stores the mail, so
        a failure at any point leaves it quarantined, never lost.
        """
        with store.transaction(self._engine) as session:
            row = session.get(Inbound, inbound_id)
            if row is None or row.state != "quarantined":
                raise LookupError(f"no quarantined mail with id {inbound_id}")
            raw, source = row.raw, row.source
        now = self._clock()
        try:
            mail = parse(raw, max_attachment_size=self._settings.tickets.max_attachment_size)
        except Exception as exc:
            return self._requarantine(inbound_id, "", f"unparseable: {exc}")
        return self._submit_parsed(mail, source, now, notify=True, replacing=inbound_id)

    def _submit_parsed(
        self,
        mail: InboundMail,
        source: str,
        now: datetime,
        *,
        notify: bool,
        replacing: int | None = None,
    ) -> Result:
        ctx = Context(self._settings.tickets, self._rules(), self._signer, now, notify=notify)
        try:
            with store.transaction(self._engine) as session:
                if replacing is not None:
                    store.delete_inbound(session, replacing)
                if store.inbound_exists(session, mail.dedupe_key):
                    return Result("duplicate", mail.message_id, detail="seen before")
                decision = decide(mail, tickets.SessionView(session), ctx)
                result = self._apply(session, mail, decision, ctx, source)
        except TemporaryFailure:
            raise
        except IntegrityError:
            if self._already_stored(mail):
                return Result("duplicate", mail.message_id, detail="stored concurrently")
            log.exception("%s: integrity error", mail.message_id)
            error = "integrity error while storing"
            if replacing is not None:
                return self._requarantine(replacing, mail.message_id, error)
            return self._quarantine(mail, source, now, error)
        except Exception as exc:
            log.exception("%s: intake failed; quarantining", mail.message_id)
            error = f"{type(exc).__name__}: {exc}"
            if replacing is not None:
                return self._requarantine(replacing, mail.message_id, error)
            return self._quarantine(mail, source, now, error)
        self._on_commit()
        log.info(
            "%s [%s-%s] %s via %s: %s",
            mail.message_id,
            self._settings.tickets.prefix,
            result.ticket,
            result.outcome,
            source,
            result.detail,
        )
        return result

    def _apply(
        self, session: Session, mail: InboundMail, decision: Decision, ctx: Context, source: str
    ) -> Result:
        now = ctx.now
        if decision.action == "ignore":
            why = "; ".join((decision.thread.evidence, *decision.notes))
            tickets.store_inbound(
                session, mail, source, now, state="ignored", ticket_number=None, error=why
            )
            return Result("ignored", mail.message_id, detail=why)
        ticket = self._target_ticket(session, mail, decision, ctx)
        assert ticket.number is not None
        inbound = tickets.store_inbound(
            session, mail, source, now, state="processed", ticket_number=ticket.number
        )
        assert inbound.id is not None
        tickets.add_message(session, ticket, mail, decision.kind, inbound.id, now)
        self._log_decision(session, ticket.number, mail, decision, ctx, source)
        if decision.action == "bounce":
            self._record_bounce(session, ticket.number, mail, now)
        if decision.status_change:
            tickets.set_status(
                session,
                ticket,
                decision.status_change,
                now,
                f"{decision.kind} from {mail.from_addr}",
            )
        ticket.updated_at = now
        session.add(ticket)
        for answer in decision.answers:
            self._send(session, ticket, mail, answer, now)
        return Result("stored", mail.message_id, ticket.number, decision.action)

    def _target_ticket(
        self, session: Session, mail: InboundMail, decision: Decision, ctx: Context
    ) -> Ticket:
        if decision.action == "new":
            ticket = tickets.open_ticket(session, mail, decision, ctx.settings.prefix, ctx.now)
            first_response = ctx.rules.first_response(ticket.priority)
            ticket.due_at = ctx.now + first_response if first_response else None
            return ticket
        assert decision.ticket is not None
        existing = session.get(Ticket, decision.ticket, with_for_update=True)
        assert existing is not None
        return existing

    def _log_decision(
        self,
        session: Session,
        number: int,
        mail: InboundMail,
        decision: Decision,
        ctx: Context,
        source: str,
    ) -> None:
        def event(kind: str, detail: str, version: str | None = None) -> None:
            tickets.log_event(
                session,
                number,
                kind,
                detail,
                ctx.now,
                message_id=mail.message_id,
                rules_version=version,
            )

        sender = mail.from_addr or "unknown sender"
        event("received", f"{decision.kind} from {sender} via {source}")
        event("threaded", decision.thread.evidence)
        if decision.verdict.automatic:
            event("automatic", "; ".join(decision.verdict.reasons))
        if decision.linked_to is not None:
            event("linked", f"linked to {ctx.settings.prefix}-{decision.linked_to}")
        if decision.routing is not None:
            routing = decision.routing
            event(
                "routed",
                f"queue {routing.queue}, priority {routing.priority}; "
                f"matched: {', '.join(routing.matched)}",
                ctx.rules.version,
            )
        for note in decision.notes:
            event("note", note)

    def _record_bounce(
        self, session: Session, number: int, mail: InboundMail, now: datetime
    ) -> None:
        bounce = mail.bounce
        recipients = bounce.recipients if bounce else ()
        status = f"{bounce.action} {bounce.status}" if bounce else "failed"
        tickets.log_event(
            session,
            number,
            "delivery_failed",
            f"{', '.join(recipients) or 'recipient'}: {status}",
            now,
            message_id=bounce.original_message_id if bounce else None,
        )
        until = now + self._settings.tickets.bounce_block
        tickets.mark_undeliverable(session, recipients, until, f"{status} ({mail.message_id})")

    def _send(
        self, session: Session, ticket: Ticket, mail: InboundMail, answer: Answer, now: datetime
    ) -> None:
        assert ticket.number is not None
        settings = self._settings.tickets
        view = _ticket_view(ticket, settings.prefix)
        context = {"ticket": view, "message": mail, "settings": settings}
        rendered = self._renderer.render(answer.template, ticket.language, context)
        rendered = replace(
            rendered, subject=with_tag(rendered.subject, settings.prefix, ticket.number)
        )
        envelope = Envelope(
            sender=settings.support_address,
            to=answer.to,
            cc=(),
            message_id=self._signer.new(ticket.number),
            in_reply_to=mail.message_id,
            references=(*mail.references, mail.message_id),
            auto_submitted="auto-replied" if answer.automatic else "auto-generated",
            date=now,
            reply_to=settings.support_address,
        )
        enqueue(
            session,
            ticket_number=ticket.number,
            template=answer.template,
            rendered=rendered,
            envelope=envelope,
        )
        tickets.log_event(
            session,
            ticket.number,
            "mail_queued",
            f"{answer.template} to {answer.to}",
            now,
            message_id=envelope.message_id,
        )

    def _already_stored(self, mail: InboundMail) -> bool:
        with store.transaction(self._engine) as session:
            return store.inbound_exists(session, mail.dedupe_key)

    def _quarantine(self, mail: InboundMail, source: str, now: datetime, error: str) -> Result:
        try:
            with store.transaction(self._engine) as session:
                tickets.store_inbound(
                    session, mail, source, now, state="quarantined", ticket_number=None, error=error
                )
        except IntegrityError:
            return Result("duplicate", mail.message_id, detail="seen before")
        log.warning("%s quarantined: %s", mail.message_id, error)
        return Result("quarantined", mail.message_id, detail=error)

    def _requarantine(self, inbound_id: int, message_id: str, error: str) -> Result:
        """A replay failed again: the row stays quarantined with the new reason."""
        with store.transaction(self._engine) as session:
            row = session.get(Inbound, inbound_id)
            if row is not None:
                row.error = error
                session.add(row)
        log.warning("%s still quarantined: %s", message_id or f"inbound {inbound_id}", error)
        return Result("quarantined", message_id, detail=error)

    def _quarantine_unparsed(self, raw: bytes, source: str, now: datetime, error: str) -> Result:
        digest = hashlib.sha256(raw).hexdigest()
        row = Inbound(
            dedupe_key=f"sha256:{digest}",
            message_id="",
            sha256=digest,
            source=source,
            received_at=now,
            state="quarantined",
            error=error,
            raw=raw,
        )
        try:
            with store.transaction(self._engine) as session:
                session.add(row)
        except IntegrityError:
            return Result("duplicate", "", detail="seen before")
        log.warning("sha256:%s quarantined: %s", digest[:16], error)
        return Result("quarantined", "", detail=error)


def _ticket_view(ticket: Ticket, prefix: str) -> TicketView:
    assert ticket.number is not None
    return TicketView(
        number=ticket.number,
        tag=f"[{prefix}-{ticket.number}]",
        subject=ticket.subject,
        status=ticket.status,
        priority=ticket.priority,
        queue=ticket.queue,
        requester=ticket.requester,
        created_at=ticket.created_at,
        due_at=ticket.due_at,
    )
