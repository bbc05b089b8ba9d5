"""``mailticket status``: what an admin needs to know, and whether to act."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mailticket import store, views
from mailticket.core import Core
from mailticket.models import Inbound, Outbox, Ticket


@dataclass
class Health:
    database: str
    tickets: dict[str, int]
    outbox: dict[str, int]
    inbound: dict[str, int]
    overdue: int
    rules_version: str
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "tickets": self.tickets,
            "outbox": self.outbox,
            "inbound": self.inbound,
            "overdue_tickets": self.overdue,
            "rules_version": self.rules_version,
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
        lines += [f"PROBLEM    {p}" for p in self.problems] or ["ok"]
        return lines


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
        )
    if health.outbox.get("failed") or health.outbox.get("uncertain"):
        health.problems.append("outgoing mail failed: see `mailticket outbox list`")
    if health.inbound.get("quarantined"):
        health.problems.append("quarantined mail: see `mailticket quarantine list`")
    if health.overdue:
        health.problems.append(f"{health.overdue} ticket(s) past their first-response time")
    return health
