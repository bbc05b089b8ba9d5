"""``mailticket status``: what an admin needs to know, and whether to act."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mailticket import store
from mailticket.inbound import imap_ledger
from mailticket.ops import heartbeat
from mailticket.ops.heartbeat import DaemonHealth
from mailticket.ops.terminal import printable
from mailticket.runtime.core import Core
from mailticket.store import views
from mailticket.store.models import Inbound, Outbox, PollerStatus, Ticket


@dataclass(frozen=True, slots=True)
class PollerHealth:
    """One ``[[imap]]`` account as its poller last recorded it."""

    account: str
    last_ok_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None

    @property
    def failing(self) -> bool:
        """The last error is newer than the last successful poll."""
        if self.last_error_at is None:
            return False
        return self.last_ok_at is None or self.last_error_at > self.last_ok_at

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "last_ok_at": views.iso(self.last_ok_at),
            "last_error": self.last_error,
            "last_error_at": views.iso(self.last_error_at),
            "failing": self.failing,
        }

    def line(self) -> str:
        ok = f"last ok {views.iso(self.last_ok_at) or 'never'}"
        if not self.failing:
            return f"{self.account}: {ok}"
        since = views.iso(self.last_error_at)
        return f"{self.account}: FAILING since {since}: {self.last_error}; {ok}"


@dataclass
class Health:
    database: str
    tickets: dict[str, int]
    outbox: dict[str, int]
    inbound: dict[str, int]
    overdue: int
    rules_version: str
    imap: list[PollerHealth] = field(default_factory=list)
    paused: list[tuple[str, datetime, str]] = field(default_factory=list)  # address, until, why
    automatic_budget: tuple[int, str] = (0, "")  # automatic answers in the global window, rate
    daemons: list[DaemonHealth] = field(default_factory=list)  # newest first
    now: datetime | None = None
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "tickets": self.tickets,
            "outbox": self.outbox,
            "inbound": self.inbound,
            "overdue_tickets": self.overdue,
            "rules_version": self.rules_version,
            "imap": [poller.as_dict() for poller in self.imap],
            "paused_automatic_answers": [
                {"address": address, "until": views.iso(until), "reason": reason}
                for address, until, reason in self.paused
            ],
            "automatic_answers": {
                "sent": self.automatic_budget[0],
                "budget": self.automatic_budget[1],
            },
            "daemons": [d.as_dict(self.now) for d in self.daemons] if self.now else [],
            "problems": self.problems,
        }

    def lines(self) -> list[str]:
        def fmt(counts: dict[str, int]) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"

        lines = [
            f"database   {self.database}",
            f"rules      version {self.rules_version}",
            f"tickets    {fmt(self.tickets)}; overdue {self.overdue}",
            f"inbound    {fmt(self.inbound)}",
            f"outbox     {fmt(self.outbox)}",
        ]
        now = self.now
        lines += [f"daemon     {d.line(now)}" for d in self._shown_daemons()] if now else []
        lines += [f"imap       {poller.line()}" for poller in self.imap]
        sent, budget = self.automatic_budget
        lines.append(
            f"automatic  {sent} answers in the last {budget.partition('/')[2]} (budget {budget})"
        )
        lines += [
            f"paused     {address} until {views.iso(until)}: {reason}"
            for address, until, reason in self.paused
        ]
        lines += [f"PROBLEM    {p}" for p in self.problems] or ["ok"]
        return [printable(line) for line in lines]  # IMAP errors, addresses: from outside

    def _shown_daemons(self) -> list[DaemonHealth]:
        """The running ones and the last few that stopped (restarts leave a row each)."""
        assert self.now is not None
        running = [d for d in self.daemons if d.stopped_at is None]
        return running + [d for d in self.daemons if d.stopped_at is not None][:3]


def collect(core: Core) -> Health:
    now = core.clock()
    with store.transaction(core.engine) as session:
        health = Health(
            database=core.engine.url.render_as_string(hide_password=True),
            tickets=views.counts(session, Ticket.status, Ticket),
            outbox=views.counts(session, Outbox.state, Outbox),
            inbound=views.counts(session, Inbound.state, Inbound),
            overdue=views.overdue(session, now),
            rules_version=core.rules.current.version,
            imap=_pollers(core, imap_ledger.statuses(session)),
            paused=store.pauses(session, now),
            daemons=heartbeat.daemons(session.connection()),
            now=now,
        )
        budget = core.settings.tickets.auto_reply_global
        sent = store.auto_replies_total_since(session, now - budget.period)
        health.automatic_budget = (sent, str(budget))
    read_only = store.write_problem(core.engine)
    if read_only:
        health.problems.append(f"{read_only}: mail gets 451 until it takes writes again")
    if sent >= budget.limit:
        health.problems.append(
            f"the global budget for automatic answers ({budget}) is used up: "
            "a mail loop or a flood? see `mailticket outbox list`"
        )
    if health.outbox.get("failed") or health.outbox.get("uncertain"):
        health.problems.append("outgoing mail failed: see `mailticket outbox list`")
    if health.inbound.get("quarantined"):
        health.problems.append(
            "quarantined mail: see `mailticket quarantine list` (replay or drop it)"
        )
    if health.overdue:
        health.problems.append(f"{health.overdue} ticket(s) past their first-response time")
    health.problems += heartbeat.problems(
        health.daemons, now, core.settings.scheduler.sweep_interval
    )
    if not core.settings.agents.require_authenticated:
        health.problems.append(
            "agents.require_authenticated = false: a forged From acts as an agent "
            "(unsafe on the Internet)"
        )
    health.problems += [
        f"IMAP {p.account}: {p.last_error} (since {views.iso(p.last_error_at)})"
        for p in health.imap
        if p.failing
    ]
    return health


def _pollers(core: Core, rows: dict[str, PollerStatus]) -> list[PollerHealth]:
    """The configured accounts (a removed account's old error is no one's problem)."""
    pollers = []
    for account in core.settings.imap:
        name = imap_ledger.account_name(account)
        row = rows.get(name) or PollerStatus(account=name)
        pollers.append(PollerHealth(name, row.last_ok_at, row.last_error, row.last_error_at))
    return pollers
