"""The one way in: raw bytes -> parse -> decide -> one transaction.

Every entry point (SMTP, IMAP, ``ingest``, ``import``, quarantine replay) goes through
``Intake``. A mail is first parsed outside any transaction (in the parser pool, under
``tickets.max_processing_time``); then its ``unit`` decides and writes it inside a
transaction that several mails share (``submit_many``, ``import``, the daemon's writer
thread: see ``batch.run_batch``): a mail that fails is undone alone and stored raw as
quarantined, the others go on. A Result is handed out only after the commit;
TemporaryFailure means the store was unavailable and nothing of that mail was
committed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any, Literal, Protocol

from dkim.dnsplug import get_txt
from sqlalchemy import Connection
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from mailticket import store
from mailticket.decide import agent_auth
from mailticket.decide.decision import Context, Decision, agent_addresses, decide
from mailticket.decide.decision_parts import Answer
from mailticket.decide.rules import RuleSet
from mailticket.decide.secret_scan import masked_mail
from mailticket.decide.states import EventKind
from mailticket.decide.threads import MessageIdSigner
from mailticket.decide.ticket_state import TicketState
from mailticket.errors import MailRejected, ParseError, TemporaryFailure
from mailticket.outbound.answers import Answers
from mailticket.outbound.notices import Renderer
from mailticket.outbound.outbox import enqueue_many, next_automatic_slot
from mailticket.outbound.outgoing import Outgoing
from mailticket.parse.mail import InboundMail, parse, peek_message_id
from mailticket.runtime.batch import Unit, run_batch
from mailticket.settings import Settings
from mailticket.store import participants, seen, session_view, ticket_log, tickets
from mailticket.store.models import Inbound

log = logging.getLogger(__name__)
Outcome = Literal["stored", "duplicate", "quarantined", "ignored"]
Parser = Callable[[bytes], "Future[InboundMail]"]  # ParseError / ProcessingTimeout inside
Store = Callable[["Arrival"], "Future[Result]"]  # the daemon's: a writer thread or process


class UnitWriter(Protocol):
    def submit_unit(self, unit: Unit[Result]) -> Future[Result]: ...


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    message_id: str
    ticket: int | None = None
    detail: str = ""
    source: str = ""
    automatic: bool = False  # an autoreply, bounce or list mail (RFC 3834): never answered


@dataclass(frozen=True, slots=True)
class Arrival:
    """A mail ready for the store: parsed, or the reason it could not be."""

    raw: bytes
    source: str
    notify: bool
    at: datetime
    mail: InboundMail | None
    error: str = ""  # why the mail could not be parsed
    replacing: int | None = None  # the quarantined row a replay replaces
    agent_auth: agent_auth.AuthVerdict | None = None  # the From domain's proof, when needed
    trusted: bool = False  # from agents.trusted_relays or a trusted IMAP account
    written_at: datetime | None = None  # an imported mail's mbox/maildir time (no Date)


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
        *,
        parser: Parser | None = None,
        dns: agent_auth.DnsLookup = get_txt,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._rules = rules
        self._signer = signer
        self._answers = Answers(
            settings.tickets, renderer, signer, files_budget=settings.agents.max_attachment_bytes
        )
        self._clock = clock
        self._on_commit = on_commit
        cap = settings.tickets.max_attachment_size
        self._parser = parser or partial(_parse_here, max_attachment_size=cap)
        self._dns = dns
        self._checker: ThreadPoolExecutor | None = None  # see submit_later

    # -- entry points -----------------------------------------------------------------

    def submit(
        self, raw: bytes, source: str, *, notify: bool = True, trusted: bool = False
    ) -> Result:
        """Store ``raw`` exactly once; returns after the commit. ``trusted``: it came from
        a trusted relay (a pipe or an import never is: anyone may have written the file)."""
        return self.submit_many([raw], source, notify=notify, trusted=trusted)[0]

    def submit_many(
        self, raws: Sequence[bytes], source: str, *, notify: bool = True, trusted: bool = False
    ) -> list[Result]:
        """Parse the mails side by side, store them in one transaction (one commit)."""
        parsed = [(raw, self._parser(raw), None) for raw in raws]
        return self._store_parsed(parsed, source, notify, trusted)

    def submit_stream(
        self,
        raws: Iterable[bytes | tuple[bytes, datetime | None]],
        source: str,
        *,
        notify: bool = True,
        batch: int = 50,
    ) -> Iterator[list[Result]]:
        """``submit_many`` over a long stream, a batch at a time; the parser pool works
        on the next batch while this one is stored. An item may come with the time its
        mailbox says it was delivered (for a mail without a Date header)."""
        waiting: deque[tuple[bytes, Future[InboundMail], datetime | None]] = deque()
        for item in raws:
            raw, written = item if isinstance(item, tuple) else (item, None)
            waiting.append((raw, self._parser(raw), written))
            if len(waiting) >= 2 * batch:
                yield self._store_parsed([waiting.popleft() for _ in range(batch)], source, notify)
        while waiting:
            taken = min(batch, len(waiting))
            yield self._store_parsed([waiting.popleft() for _ in range(taken)], source, notify)

    def _store_parsed(
        self,
        parsed: Sequence[tuple[bytes, Future[InboundMail], datetime | None]],
        source: str,
        notify: bool,
        trusted: bool = False,
    ) -> list[Result]:
        now = self._clock()
        return self.store(
            [
                replace(self.arrival(raw, source, notify, p, now, trusted=trusted), written_at=at)
                for raw, p, at in parsed
            ]
        )

    async def accept(
        self,
        raw: bytes,
        source: str,
        *,
        notify: bool,
        run: Store,
        parse: Parser | None = None,
        trusted: bool = False,
    ) -> Result:
        """``submit`` for the event loop (see ``submit_later``)."""
        later = self.submit_later(raw, source, notify=notify, run=run, parse=parse, trusted=trusted)
        return await asyncio.wrap_future(later)

    def submit_later(
        self,
        raw: bytes,
        source: str,
        *,
        notify: bool = True,
        run: Store,
        parse: Parser | None = None,
        trusted: bool = False,
    ) -> Future[Result]:
        """Parse in the pool, then store through ``run`` (the daemon's writer thread or
        process, which commits the mail with whatever else is waiting); resolves after
        the commit.

        Nothing waits in between: the parse's completion hands the mail straight to the
        writer, from the pool's own thread (or at once, when ``parse`` parsed it here).
        """
        now = self._clock()
        parsed = (parse or self._parser)(raw)
        finished: Future[Result] = Future()

        def store(done: Future[InboundMail]) -> None:
            try:
                arrival = self.arrival(raw, source, notify, done, now, trusted=trusted)
                run(arrival).add_done_callback(settle)
            except BaseException as exc:  # TemporaryFailure: the pool or the writer is gone
                finished.set_exception(exc)

        def settle(done: Future[Result]) -> None:
            try:
                finished.set_result(self.finish(done.result()))
            except BaseException as exc:
                finished.set_exception(exc)

        if parsed.done() and self._checks_dkim(parsed):
            # parsed on the event loop's thread; checking a DKIM signature asks DNS
            self._checks().submit(store, parsed)
        else:
            parsed.add_done_callback(store)
        return finished

    def _checks_dkim(self, parsed: Future[InboundMail]) -> bool:
        if parsed.exception() is not None:
            return False
        mail = parsed.result()
        return self._needs_proof(mail) and bool(mail.header("dkim-signature"))

    def _checks(self) -> ThreadPoolExecutor:
        if self._checker is None:
            self._checker = ThreadPoolExecutor(4, thread_name_prefix="agent-auth")
        return self._checker

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
        parsed = self._parser(raw)
        arrival = self.arrival(raw, source, True, parsed, self._clock(), replacing=inbound_id)
        return self.store([arrival])[0]

    # -- the pieces: parse, arrival (its outcome), unit (in a transaction), finish --------

    def parse(self, raw: bytes) -> Future[InboundMail]:
        """Start parsing ``raw`` (in the pool, under the time bound)."""
        return self._parser(raw)

    def arrival(
        self,
        raw: bytes,
        source: str,
        notify: bool,
        parsed: Future[InboundMail],
        now: datetime,
        *,
        replacing: int | None = None,
        trusted: bool = False,
    ) -> Arrival:
        """Wait for the parse; a mail it rejects is kept for quarantine with the reason."""
        try:
            mail = parsed.result()
        except TemporaryFailure:
            raise
        except ParseError as exc:
            return Arrival(raw, source, notify, now, None, f"unparseable: {exc}", replacing)
        except MailRejected as exc:
            return Arrival(raw, source, notify, now, None, str(exc), replacing)
        except Exception as exc:  # a parser bug must not lose the mail
            log.exception("parser failed on a %d-byte mail", len(raw))
            return Arrival(raw, source, notify, now, None, f"parser error: {exc!r}", replacing)
        for note in mail.limit_notes:  # stored all the same: the raw mail keeps everything
            log.warning("%s over a limit: %s", mail.message_id, note)
        checked = self._authenticate(mail, trusted)
        return Arrival(
            raw, source, notify, now, mail, replacing=replacing, agent_auth=checked,
            trusted=trusted,
        )  # fmt: skip

    def _needs_proof(self, mail: InboundMail) -> bool:
        """A mail from an agent's address, or one naming Cc that could join a ticket."""
        if not mail.from_addr:
            return False
        own = {self._settings.tickets.support_address.lower()}
        return mail.from_addr in agent_addresses(self._rules()) or any(
            address not in own for address in mail.cc
        )

    def _authenticate(self, mail: InboundMail, trusted: bool) -> agent_auth.AuthVerdict | None:
        """How the From domain vouches for a mail that needs it; checked here, before the
        transaction, because DKIM may ask DNS."""
        if not self._needs_proof(mail):
            return None
        settings = self._settings.agents
        try:
            return agent_auth.authenticate(
                mail, settings.trusted_authserv_id, self._dns, results_trusted=trusted
            )
        except Exception as exc:  # a DNS or dkimpy failure is no proof
            return agent_auth.AuthVerdict(False, f"not authenticated: {type(exc).__name__}: {exc}")

    def store(self, arrivals: Sequence[Arrival]) -> list[Result]:
        """Store the mails in one transaction; TemporaryFailure if any was not committed."""
        outcomes = run_batch(self._engine, [self.unit(a) for a in arrivals])
        results = [self.finish(done.result()) for done in outcomes if done.error is None]
        failed = [done.error for done in outcomes if done.error is not None]
        if failed:
            raise failed[0]
        return results

    def unit(self, arrival: Arrival) -> Unit[Result]:
        """The mail's work inside a shared transaction (see ``batch.run_batch``)."""
        return Unit(partial(self._store, arrival), partial(self._failed, arrival))

    def rehearse(self, mails: Sequence[bytes]) -> list[Result]:
        """Store ``mails`` and roll back: the first real mails then find the templates
        and SQL statements compiled (see ``warm_up``). What they would have been; empty
        when nothing was rehearsed. Never fatal: a failure here shows again, and is
        handled, on the first real mail.

        Only where a rollback leaves no trace: PostgreSQL's sequences are not rolled
        back, so there a rehearsal would leave a gap in the ticket numbers.
        """
        if self._engine.dialect.name != "sqlite":
            return []
        parse = partial(_parse_here, max_attachment_size=self._settings.tickets.max_attachment_size)
        now = self._clock()
        try:
            arrivals = [self.arrival(raw, "warm-up", True, parse(raw), now) for raw in mails]
            with store.rolled_back(self._engine) as connection:  # the write turn: only this
                return [self._store(arrival, connection) for arrival in arrivals]
        except Exception as exc:
            log.warning("warm-up skipped: %s", exc)
            return []

    def in_thread(self, writer: UnitWriter) -> Store:
        """``run`` for ``submit_later``: the mail's unit in ``writer``'s next batch."""
        return lambda arrival: writer.submit_unit(self.unit(arrival))

    def finish(self, result: Result) -> Result:
        """After the commit: log the outcome, wake the outbox when something was stored."""
        if result.outcome == "quarantined":
            log.warning("%s quarantined: %s", result.message_id or "(unparsed)", result.detail)
            return result
        if result.outcome == "stored":
            self._on_commit()
        prefix = self._settings.tickets.prefix
        tag = f" [{prefix}-{result.ticket}]" if result.ticket is not None else ""
        log.info(
            "%s%s %s via %s: %s",
            result.message_id,
            tag,
            result.outcome,
            result.source,
            result.detail,
        )
        return result

    # -- inside the transaction ---------------------------------------------------------

    def _store(self, arrival: Arrival, connection: Connection) -> Result:
        mail = arrival.mail
        if mail is None:
            return self._quarantine(connection, arrival, arrival.error)
        if arrival.replacing is not None:
            store.delete_inbound(connection, arrival.replacing)
        found = seen.seen(connection, mail, self._parse_stored)
        if found.duplicate:
            return Result("duplicate", mail.message_id, None, "seen before", arrival.source)
        return self._apply(connection, arrival, mail, found)

    def _failed(self, arrival: Arrival, connection: Connection, error: Exception) -> Result:
        """``_store`` failed (and was undone): keep the mail raw with the reason."""
        mail = arrival.mail
        if isinstance(error, IntegrityError) and mail is not None:
            if seen.seen(connection, mail, self._parse_stored).duplicate:
                return Result(
                    "duplicate", mail.message_id, None, "stored concurrently", arrival.source
                )
            reason = "integrity error while storing"
        else:
            reason = f"{type(error).__name__}: {error}"
        log.error("%s: intake failed; quarantining", _identity(arrival).message_id, exc_info=error)
        return self._quarantine(connection, arrival, reason)

    def _parse_stored(self, raw: bytes) -> InboundMail:
        """A stored mail parsed again, to compare it with a new one with its Message-ID."""
        return parse(raw, max_attachment_size=self._settings.tickets.max_attachment_size)

    def _apply(
        self, connection: Connection, arrival: Arrival, mail: InboundMail, found: seen.Seen
    ) -> Result:
        ctx = Context(
            self._settings.tickets,
            self._rules(),
            self._signer,
            arrival.at,
            notify=arrival.notify,
            require_agent_auth=self._settings.agents.require_authenticated,
            agent_auth=arrival.agent_auth,
            trusted_source=arrival.trusted,
            spam=self._settings.spam,
            authserv_id=self._settings.agents.trusted_authserv_id,
        )
        decision = decide(mail, session_view.SessionView(connection, lock=True), ctx)
        now, source = ctx.now, arrival.source
        if decision.action in ("ignore", "status"):
            return self._without_ticket(connection, arrival, mail, decision, found)
        ticket = self._target_ticket(connection, mail, decision, ctx, arrival)
        inbound_id = seen.store_inbound(
            connection,
            seen.identity(mail, found.dedupe_key),
            mail.raw,
            source,
            now,
            state="processed",
            ticket_number=ticket.number,
        )
        tickets.add_message(connection, ticket.number, mail, decision.kind, inbound_id, now)
        events = ticket_log.decision_events(ticket.number, mail, decision, ctx, source)
        if found.reused:
            detail = f"{found.reused} was already used by a different mail: stored as a new one"
            events.append(ticket_log.event(ticket.number, EventKind.MESSAGE_ID_REUSED, detail, now))
        if decision.participants:
            why = f"Cc of a verified mail from {mail.from_addr}"
            events += participants.participant_events(
                connection, ticket.number, decision.participants, (), why, now
            )
        changes = decision.changes
        if changes.cc_added or changes.cc_removed:
            why = f"#cc by {mail.from_addr}"
            events += participants.participant_events(
                connection, ticket.number, changes.cc_added, changes.cc_removed, why, now
            )
        if decision.confirmed:
            confirmed = ticket_log.event(
                ticket.number, EventKind.CONFIRMED, f"applied by {mail.message_id}", now,
                message_id=decision.confirmed,
            )  # fmt: skip
            events.append(confirmed)
        events += [
            ticket_log.event(ticket.number, EventKind.LIMIT, note, now) for note in mail.limit_notes
        ]
        if decision.action == "bounce":
            block = self._settings.tickets.bounce_block
            events.append(tickets.record_bounce(connection, ticket.number, mail, now, block))
        if decision.action != "new":
            if decision.status_change and decision.status_change != ticket.status:
                why = f"{decision.kind} from {mail.from_addr}"
                change = f"{ticket.status} -> {decision.status_change}: {why}"
                events.append(ticket_log.event(ticket.number, EventKind.STATUS, change, now))
            ticket, changed = tickets.touch(
                connection, ticket, decision.status_change, now, ctx.rules, decision.changes
            )
            events += changed
        shown = masked_mail(mail) if decision.secrets else mail  # what agents may read
        agents_language = ctx.rules.agent_language(ticket.queue, self._settings.agents.language)
        outgoing = [
            self._answers.outgoing(
                ticket,
                shown,
                answer,
                now,
                secret_warning=decision.secrets,
                thread=tickets.conversation(connection, ticket.number, answer.to),
                agent_language=agents_language,
            )
            for answer in decision.answers
        ]
        outgoing = self._scheduled(connection, decision.answers, outgoing, now)
        enqueue_many(connection, outgoing)
        events += [ticket_log.queued_event(mail, now) for mail in outgoing]
        events += [
            ticket_log.event(
                ticket.number,
                EventKind.CONFIRM_REQUESTED,
                answer.confirms,
                now,
                message_id=sent.envelope.message_id,
            )
            for answer, sent in zip(decision.answers, outgoing, strict=True)
            if answer.confirms
        ]
        events += self._pause(connection, decision, now, ticket.number)
        ticket_log.add_events(connection, events)
        automatic = decision.verdict.automatic
        return Result("stored", mail.message_id, ticket.number, decision.action, source, automatic)

    def _scheduled(
        self,
        connection: Connection,
        answers: Sequence[Answer],
        outgoing: list[Outgoing],
        now: datetime,
    ) -> list[Outgoing]:
        """Answers the global budget delays go out in the first period with room: many
        first-time requesters at once (an outage) learn their number late, never not."""
        if not any(answer.delayed for answer in answers):
            return outgoing
        budget = self._settings.tickets.auto_reply_global
        return [
            replace(mail, not_before=next_automatic_slot(connection, now, budget))
            if answer.delayed
            else mail
            for answer, mail in zip(answers, outgoing, strict=True)
        ]

    def _pause(
        self, connection: Connection, decision: Decision, now: datetime, ticket: int | None
    ) -> list[dict[str, Any]]:
        """Stop automatic answers to the addresses that tripped a budget (loop guard)."""
        until = now + self._settings.tickets.auto_reply_pause
        events = []
        for pause in decision.pauses:
            store.pause(connection, pause.address, now, until, pause.reason)
            detail = f"automatic answers to {pause.address} paused until {until:%Y-%m-%d %H:%M} UTC: {pause.reason}"
            log.warning("%s (ticket %s)", detail, ticket)
            if ticket is not None:
                events.append(ticket_log.event(ticket, EventKind.PAUSED, detail, now))
        return events

    def _without_ticket(
        self,
        connection: Connection,
        arrival: Arrival,
        mail: InboundMail,
        decision: Decision,
        found: seen.Seen,
    ) -> Result:
        """A mail that opens no ticket: ignored (automatic, about nothing of ours), or a
        status request, answered with the sender's tickets."""
        why = "; ".join((decision.thread.evidence, *decision.notes))
        state = "ignored" if decision.action == "ignore" else "processed"
        seen.store_inbound(
            connection,
            seen.identity(mail, found.dedupe_key),
            mail.raw,
            arrival.source,
            arrival.at,
            state=state,
            ticket_number=None,
            error=why,
        )
        if decision.action == "ignore":
            automatic = decision.verdict.automatic
            return Result("ignored", mail.message_id, None, why, arrival.source, automatic)
        self._pause(connection, decision, arrival.at, None)
        listing = tickets.requester_tickets(connection, mail.from_addr)
        enqueue_many(
            connection,
            [self._answers.status_reply(mail, a, listing, arrival.at) for a in decision.answers],
        )
        return Result("stored", mail.message_id, None, "status", arrival.source)

    def _target_ticket(
        self, connection: Connection, mail: InboundMail, decision: Decision, ctx: Context,
        arrival: Arrival,
    ) -> TicketState:  # fmt: skip
        if decision.action == "new":
            assert decision.routing is not None
            return tickets.open_ticket(
                connection, mail, decision, ctx.settings.prefix, ctx.now, ctx.rules,
                created_at=_created_at(mail, ctx, arrival), clock_runs=ctx.notify,
            )  # fmt: skip
        assert decision.ticket is not None
        return tickets.locked_ticket(connection, decision.ticket)

    def _quarantine(self, connection: Connection, arrival: Arrival, error: str) -> Result:
        """Keep the mail raw with the reason (a replay's row just gets the new reason)."""
        found = _identity(arrival)
        if arrival.replacing is not None:
            store.set_inbound_error(connection, arrival.replacing, error)
            return Result("quarantined", found.message_id, None, error, arrival.source)
        if store.inbound_exists(connection, found.dedupe_key):
            return Result("duplicate", found.message_id, None, "seen before", arrival.source)
        seen.store_inbound(
            connection,
            found,
            arrival.raw,
            arrival.source,
            arrival.at,
            state="quarantined",
            ticket_number=None,
            error=error,
        )
        return Result("quarantined", found.message_id, None, error, arrival.source)


def _parse_here(raw: bytes, *, max_attachment_size: int) -> Future[InboundMail]:
    """Parse in the calling thread, without a time bound (for tests and tools)."""
    parsed: Future[InboundMail] = Future()
    try:
        parsed.set_result(parse(raw, max_attachment_size=max_attachment_size))
    except Exception as exc:
        parsed.set_exception(exc)
    return parsed


def _created_at(mail: InboundMail, ctx: Context, arrival: Arrival) -> datetime:
    """When a ticket opened: now, or for old mail brought in (``import``, an IMAP
    mailbox's mail before ``since``) the date it was written (its Date header, else the
    time its mailbox says it was delivered), so that reports count the backlog by its own
    dates. A date in the future is a wrong clock: now."""
    written = mail.date or arrival.written_at
    if (arrival.source == "import" or not ctx.notify) and written is not None:
        return min(written, ctx.now)
    return ctx.now


def _identity(arrival: Arrival) -> seen.Identity:
    if arrival.mail is not None:
        return seen.identity(arrival.mail)
    digest = hashlib.sha256(arrival.raw).hexdigest()
    return seen.Identity(f"sha256:{digest}", peek_message_id(arrival.raw), digest)
