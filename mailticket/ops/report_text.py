"""The report as plain-text tables (rich), for a terminal or a Monday-morning mail."""

from __future__ import annotations

import io
from datetime import datetime

from rich import box
from rich.console import Console
from rich.table import Table

from mailticket.ops.report import Measure, Report
from mailticket.ops.terminal import printable

WIDTH = 100  # fixed, so a report piped into mail looks the same as on a terminal


def render(report: Report) -> str:
    buffer = io.StringIO()
    console = Console(
        file=buffer, width=WIDTH, color_system=None, highlight=False, emoji=False, markup=False
    )
    console.print(f"mailticket report {_minute(report.since)} .. {_minute(report.until)} UTC")
    for table in (
        _volume(report),
        _durations("First response", report.first_response),
        _durations("Resolution", report.resolution),
        _sla(report),
        _ranking("Top tags", "tag", report.top_tags),
        _ranking("Top senders", "sender", report.top_senders),
        _backlog(report),
    ):
        console.print()
        console.print(table)
    return "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    return table


def _volume(report: Report) -> Table:
    table = _table("Tickets by queue", "queue", "opened", "resolved")
    for queue in sorted(report.opened.keys() | report.resolved.keys()):
        table.add_row(queue, str(report.opened.get(queue, 0)), str(report.resolved.get(queue, 0)))
    table.add_row(
        "all", str(sum(report.opened.values())), str(sum(report.resolved.values())), style="bold"
    )
    return table


def _durations(title: str, measure: Measure) -> Table:
    table = _table(f"{title} time", "queue", "priority", "tickets", "p50", "p90")
    table.columns[1].justify = "left"
    for (queue, priority), s in measure.groups.items():
        table.add_row(queue, priority, str(s.count), human(s.p50), human(s.p90))
    if measure.overall is not None:
        s = measure.overall
        table.add_row("all", "", str(s.count), human(s.p50), human(s.p90))
    return table


def _sla(report: Report) -> Table:
    table = _table("SLA (first response due in the window)", "queue", "priority", "due", "breached")
    table.columns[1].justify = "left"
    for (queue, priority), count in report.sla.items():
        table.add_row(queue, priority, str(count.due), str(count.breached))
    due = sum(c.due for c in report.sla.values())
    breached = sum(c.breached for c in report.sla.values())
    table.add_row("all", "", str(due), str(breached))
    return table


def _ranking(title: str, what: str, rows: list[tuple[str, int]]) -> Table:
    table = _table(title, what, "tickets")
    for name, count in rows:
        table.add_row(printable(name), str(count))  # tags and senders come from mail
    return table


def _backlog(report: Report) -> Table:
    table = _table("Backlog now", "queue", "status", "tickets", "oldest since")
    table.columns[1].justify = "left"
    for (queue, status), entry in report.backlog.items():
        table.add_row(queue, status, str(entry.count), _minute(entry.oldest))
    return table


def human(seconds: float) -> str:
    """The two largest units: 90061 s -> '1d 1h', 150 s -> '2m 30s'."""
    left = round(seconds)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, left = divmod(left, size)
        if amount or (unit == "s" and not parts):
            parts.append(f"{amount}{unit}")
    return " ".join(parts[:2])


def _minute(moment: datetime) -> str:
    return format(moment, "%Y-%m-%d %H:%M")
