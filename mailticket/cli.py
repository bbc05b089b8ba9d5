"""The ``mailticket`` command: builds Settings once, calls the use cases, maps errors to exits."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from sqlmodel import col, select

from mailticket import __version__, store
from mailticket.errors import ConfigError, TemporaryFailure
from mailticket.inbound.bulk_import import import_mailbox, open_mailbox
from mailticket.inbound.envelope import stamp
from mailticket.ops.logs import configure as configure_logging
from mailticket.ops.terminal import json_text, printable, printable_lines
from mailticket.outbound.agent_files import human_size, masked_copy
from mailticket.runtime.core import Core, build_core
from mailticket.settings import Settings, load_settings
from mailticket.store import views
from mailticket.store.models import Inbound, Outbox, Ticket

EX_TEMPFAIL = 75
EX_CONFIG = 78


@click.group()
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="mailticket.toml (default: ./mailticket.toml when present)",
)
@click.version_option(__version__)
@click.pass_context
def main(ctx: click.Context, config_path: Path | None) -> None:
    """Email-driven support tickets."""
    try:
        settings = load_settings(config_path, environ=os.environ)
    except ConfigError as exc:
        _fail(str(exc), _config_exit(ctx.invoked_subcommand))
    configure_logging(settings.log.format, settings.log.level)
    ctx.obj = settings


def _config_exit(command: str | None) -> int:
    """An MTA bounces a mail on 78 (EX_CONFIG): for ``ingest`` a broken config is temporary."""
    return EX_TEMPFAIL if command == "ingest" else EX_CONFIG


def _fail(message: str, code: int) -> NoReturn:
    click.echo(printable(f"mailticket: {message}"), err=True)
    sys.exit(code)


def _echo(line: str) -> None:
    """One line of output: values from mail never reach the terminal raw (``terminal``)."""
    click.echo(printable(line))


@contextmanager
def _core(
    settings: Settings, *, migrate: bool = True, config_exit: int = EX_CONFIG
) -> Iterator[Core]:
    """Build the core; configuration and storage problems become one line and an exit code."""
    try:
        core = build_core(settings, migrate=migrate)
    except ConfigError as exc:
        _fail(str(exc), config_exit)
    except TemporaryFailure as exc:
        _fail(str(exc), EX_TEMPFAIL)
    try:
        yield core
    except ConfigError as exc:  # found late, e.g. a DKIM key read when the transport is built
        _fail(str(exc), config_exit)
    except TemporaryFailure as exc:
        _fail(str(exc), EX_TEMPFAIL)
    finally:
        core.close()


def _print_json(data: Any) -> None:
    click.echo(json_text(data, indent=2))


def _table(rows: Sequence[Sequence[object]], *, right: int = 0) -> None:
    """``rows`` in columns as wide as their widest cell (on a terminal: a Chinese character
    takes two), the first ``right`` columns aligned right; the last one is not padded."""
    from rich.cells import cell_len

    cells = [[printable(value) for value in row] for row in rows]
    widths = [max(map(cell_len, column)) for column in zip(*cells, strict=True)]
    for row in cells:
        padded = []
        for n, (cell, width) in enumerate(zip(row[:-1], widths, strict=False)):
            blank = " " * (width - cell_len(cell))
            padded.append(blank + cell if n < right else cell + blank)
        click.echo(" ".join([*padded, row[-1]]).rstrip())


Command = TypeVar("Command", bound=Callable[..., Any])


def _paged(default_limit: int) -> Callable[[Command], Command]:
    """``--limit N``, ``--offset N`` and ``--all`` for a list command."""

    def add(command: Command) -> Command:
        options = [
            click.option("--limit", type=click.IntRange(min=1), default=default_limit,
                         show_default=True, help="show at most N rows"),
            click.option("--offset", type=click.IntRange(min=0), default=0,
                         help="skip the first N rows"),
            click.option("--all", "every", is_flag=True, help="show every row"),
        ]  # fmt: skip
        for option in reversed(options):
            command = option(command)
        return command

    return add


def _window(limit: int, offset: int, every: bool) -> views.ListWindow:
    return views.ListWindow(offset=offset, limit=None if every else limit)


def _show(
    page: views.Page,
    as_json: bool,
    line: Callable[[dict[str, Any]], list[object]],
    *,
    right: int = 0,
) -> None:
    """A page of a list, as JSON or columns; when it leaves rows out, stderr says so."""
    if as_json:
        _print_json(page.rows)
    elif page.rows:
        _table([line(row) for row in page.rows], right=right)
    if cut := page.cut():
        click.echo(f"mailticket: {cut}", err=True)


# -- daemon -----------------------------------------------------------------------------


@main.command()
@click.pass_obj
def serve(settings: Settings) -> None:
    """Run everything the config enables: SMTP listener, IMAP pollers, outbox, follow-up."""
    from mailticket.ops.sd_notify import Notifier
    from mailticket.runtime.daemon import serve as run_daemon

    with _core(settings) as core:
        notifier = Notifier.from_environ(os.environ)
        sys.exit(asyncio.run(run_daemon(core, notifier=notifier)))


# -- ways in ----------------------------------------------------------------------------


@main.command()
@click.argument("file", type=click.File("rb"), default="-")
@click.option(
    "--sender",
    metavar="ADDR",
    default=None,
    help='envelope sender, written as Return-Path (Postfix ${sender}; "" the null sender)',
)
@click.option(
    "--recipient",
    "recipients",
    metavar="ADDR",
    multiple=True,
    help="envelope recipient, written as Delivered-To (Postfix ${recipient}); repeatable",
)
@click.pass_obj
def ingest(settings: Settings, file: Any, sender: str | None, recipients: tuple[str, ...]) -> None:
    """Take one mail from FILE or stdin (for an MTA pipe). Exit 0 once stored, 75 to retry.

    With --sender/--recipient the envelope is written on top of the mail as a delivering
    MTA writes it (Return-Path, Delivered-To), as the SMTP listener does."""
    try:
        raw = stamp(file.read(), sender, recipients)
    except ValueError as exc:  # the pipe's command line is wrong: keep the mail, never bounce
        _fail(f"not stored: {exc}", EX_TEMPFAIL)
    if missing := store.database_missing(settings.database.url):
        _fail(missing, EX_TEMPFAIL)  # the MTA keeps the mail until the admin fixes the path
    with _core(settings, config_exit=EX_TEMPFAIL) as core:
        try:
            result = core.intake.submit(raw, "pipe")
        except TemporaryFailure:
            raise
        except Exception as exc:  # a bug: the MTA keeps the mail and retries, never bounces it
            logging.getLogger(__name__).exception("ingest failed before the commit")
            _fail(f"not stored, retry later: {exc!r}", EX_TEMPFAIL)
    _echo(f"{result.outcome} {result.message_id} {_tag(settings, result.ticket)}".rstrip())


@main.command(name="import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--notify", is_flag=True, help="send acknowledgements and notifications")
@click.pass_obj
def import_(settings: Settings, path: Path, notify: bool) -> None:
    """Import an mbox file or a maildir; running it again adds nothing."""
    from rich.progress import Progress

    if missing := store.database_missing(settings.database.url):
        _fail(missing, 1)
    try:
        total = len(open_mailbox(path))
    except ValueError as exc:
        _fail(str(exc), 1)
    with _core(settings) as core, _quiet("mailticket.intake"), Progress(transient=False) as bar:
        task = bar.add_task(f"importing {path.name}", total=total)
        outcomes = import_mailbox(
            core.intake, path, notify=notify, progress=lambda n: bar.update(task, completed=n)
        )
    _echo(", ".join(f"{count} {name}" for name, count in sorted(outcomes.items())) or "empty")


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    """The logger ``name`` without its INFO lines (one per mail: the summary line tells
    the same), unless the admin asked for DEBUG; warnings (quarantined mail) still show."""
    logger = logging.getLogger(name)
    before = logger.level
    if logger.getEffectiveLevel() > logging.DEBUG:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(before)


def _tag(settings: Settings, number: int | None) -> str:
    return f"{settings.tickets.prefix}-{number}" if number is not None else ""


# -- rules ------------------------------------------------------------------------------


@main.group()
def rules() -> None:
    """Routing rules (rules.yaml)."""


@rules.command(name="check")
@click.argument("file", required=False, type=click.Path(path_type=Path))
@click.pass_obj
def rules_check(settings: Settings, file: Path | None) -> None:
    """Validate FILE (default: tickets.rules_file) and run its inline tests; exit 0 or 1."""
    from mailticket.decide.rules_check import check_file
    from mailticket.outbound.notices import template_dirs

    directories = template_dirs(settings.tickets.templates_dir)

    def template_exists(name: str) -> bool:
        return any((d / f"{name}.txt.j2").is_file() for d in directories)

    from mailticket.runtime.core import own_addresses

    own = own_addresses(settings)
    report = check_file(file or settings.tickets.rules_file, template_exists, own=own)
    for problem in report.problems:
        _echo(problem)
    if not report.ok or report.rules is None:
        sys.exit(1)
    spec = report.rules.spec
    _echo(
        f"{report.rules.source}: ok: {len(spec.queues)} queues, {len(spec.rules)} rules, "
        f"{report.tests_run} tests passed (version {report.rules.version})"
    )


@main.command()
@click.argument("mail", type=click.File("rb"))
@click.option("--json", "as_json", is_flag=True)
@click.option("--raw", is_flag=True, help="Show private keys and recovery phrases in clear.")
@click.pass_obj
def explain(settings: Settings, mail: Any, as_json: bool, raw: bool) -> None:
    """The whole decision for MAIL (an .eml file, - for stdin); nothing is written."""
    from mailticket.ops.explain import as_lines
    from mailticket.ops.explain import explain as explain_mail
    from mailticket.runtime.core import RulesHolder, own_addresses, utcnow

    content = mail.read()
    try:
        current = RulesHolder(settings.tickets.rules_file, own=own_addresses(settings))()
        report = explain_mail(settings, current, content, utcnow(), show_secrets=raw)
    except ConfigError as exc:
        _fail(str(exc), EX_CONFIG)
    except TemporaryFailure as exc:
        _fail(str(exc), EX_TEMPFAIL)
    if as_json:
        _print_json(report)
        return
    for line in as_lines(report):
        _echo(line)


# -- tickets ----------------------------------------------------------------------------


@main.group()
def tickets() -> None:
    """List and show tickets."""


@tickets.command(name="list")
@click.option("--status")
@click.option("--queue")
@click.option("--json", "as_json", is_flag=True)
@_paged(500)
@click.pass_obj
def tickets_list(
    settings: Settings,
    status: str | None,
    queue: str | None,
    as_json: bool,
    limit: int,
    offset: int,
    every: bool,
) -> None:
    """Tickets, newest first."""
    window = _window(limit, offset, every)
    with _core(settings) as core, store.transaction(core.engine) as session:
        page = views.ticket_page(
            session, settings.tickets.prefix, window, status=status, queue=queue
        )

    def line(row: dict[str, Any]) -> list[object]:
        fields = ("tag", "status", "priority", "queue", "requester", "subject")
        return [row[key] for key in fields]

    _show(page, as_json, line)


@tickets.command(name="show")
@click.argument("number")
@click.option("--json", "as_json", is_flag=True)
@click.option("--raw", is_flag=True, help="Show private keys and recovery phrases in clear.")
@click.pass_obj
def tickets_show(settings: Settings, number: str, as_json: bool, raw: bool) -> None:
    wanted = _parse_number(number, settings.tickets.prefix)
    with _core(settings) as core, store.transaction(core.engine) as session:
        ticket = session.get(Ticket, wanted)
        if ticket is None:
            _fail(f"no ticket {number}", 1)
        detail = views.ticket_detail(session, ticket, settings.tickets.prefix, raw=raw)
    if as_json:
        _print_json(detail)
        return
    _print_ticket(detail)


@tickets.command(name="attachment")
@click.argument("number")
@click.argument("attachment_id", metavar="ID", type=int)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write to FILE (default: standard output).",
)
@click.option("--raw", is_flag=True, help="Write private keys and recovery phrases in clear.")
@click.pass_obj
def tickets_attachment(
    settings: Settings, number: str, attachment_id: int, output: str | None, raw: bool
) -> None:
    """Write out a file of a ticket's mail (IDs: tickets show). Secrets in it are masked,
    as agents get it, unless --raw."""
    wanted = _parse_number(number, settings.tickets.prefix)
    with _core(settings) as core, store.transaction(core.engine) as session:
        found = views.attachment(session, wanted, attachment_id)
        if found is None:
            _fail(
                f"no file {attachment_id} on ticket {number} (see: mailticket tickets show {number})",
                1,
            )
        filename, content = found.filename, found.content
    if content is None:
        _fail(
            f"{filename!r} was not kept: over tickets.max_attachment_size (the raw mail has it)", 1
        )
    if not raw:
        masked, note = masked_copy(filename, content)
        if masked is None:
            _fail(f"{filename!r}: {note}; --raw writes it as received", 1)
        content = masked
    if output is None:
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
        return
    Path(output).write_bytes(content)
    click.echo(f"{output}: {human_size(len(content))}", err=True)


def _parse_number(text: str, prefix: str) -> int:
    cleaned = text.strip().strip("[]").upper().removeprefix(prefix.upper() + "-")
    if not cleaned.isdigit():
        _fail(f"not a ticket number: {text!r} (write e.g. {prefix}-123)", 2)
    return int(cleaned)


def _print_ticket(detail: dict[str, Any]) -> None:
    _echo(f"{detail['tag']}  {detail['subject']}")
    for key in ("status", "priority", "queue", "requester", "assignee", "created_at", "due_at"):
        _echo(f"  {key:<11} {detail[key]}")
    if detail["due_derivation"]:
        _echo(f"  {'':<11} {detail['due_derivation']}")
    _echo(f"  {'tags':<11} {' '.join(detail['tags']) or '-'}")
    if detail["fields"]:
        click.echo()
        _echo("Fields:")
        for name, value in detail["fields"].items():
            _echo(f"  {name:<11} {value}")
    click.echo()
    _echo("Messages:")
    for m in detail["messages"]:
        _echo(f"  {m['date']} {m['direction']:<3} {m['kind']:<12} {m['from']} {m['subject']}")
        for f in m["attachments"]:
            kept = "" if f["kept"] else ", not kept (over tickets.max_attachment_size)"
            _echo(
                f"      file {f['id']}: {f['filename']} ({human_size(f['size'])}, {f['content_type']}{kept})"
            )
    click.echo()
    _echo("Events:")
    for e in detail["events"]:
        _echo(f"  {e['at']} {e['kind']:<14} {e['detail']}")


# -- outbox -----------------------------------------------------------------------------


@main.group()
def outbox() -> None:
    """The outgoing mail queue."""


@outbox.command(name="list")
@click.option("--json", "as_json", is_flag=True)
@_paged(200)
@click.pass_obj
def outbox_list(settings: Settings, as_json: bool, limit: int, offset: int, every: bool) -> None:
    """Outgoing mail, newest first."""
    with _core(settings) as core, store.transaction(core.engine) as session:
        page = views.outbox_page(session, _window(limit, offset, every))

    def line(row: dict[str, Any]) -> list[object]:
        fields = ("id", "state", "template", "to")
        return [
            *(row[key] for key in fields),
            f"attempts={row['attempts']}",
            row["last_error"] or "",
        ]

    _show(page, as_json, line, right=1)


@outbox.command(name="retry")
@click.argument("row_id", required=False, type=int)
@click.pass_obj
def outbox_retry(settings: Settings, row_id: int | None) -> None:
    """Put failed (or one given) rows back in the queue and deliver what is due now."""
    from mailticket.outbound.outbox import OutboxWorker
    from mailticket.outbound.transport import build_transport

    with _core(settings) as core:
        with store.transaction(core.engine) as session:
            ids = (
                [row_id]
                if row_id is not None
                else views.outbox_ids(session, ["failed", "uncertain"])
            )
            for row in session.exec(select(Outbox).where(col(Outbox.id).in_(ids))).all():
                row.state, row.next_attempt_at, row.lease_until = "pending", core.clock(), None
                row.attempts, row.uncertain = 0, 0
                session.add(row)
        worker = OutboxWorker(
            core.engine, build_transport(settings.outbound), settings.outbound, core.clock
        )
        delivered = asyncio.run(_deliver_all(worker))
    _echo(f"{len(ids)} requeued, {delivered} handed to the transport")


async def _deliver_all(worker: Any) -> int:
    total = 0
    while count := await worker.deliver_due():
        total += count
    return total


# -- quarantine -------------------------------------------------------------------------


@main.group()
def quarantine() -> None:
    """Mails that failed a processing step, kept raw."""


@quarantine.command(name="list")
@click.option("--json", "as_json", is_flag=True)
@_paged(500)
@click.pass_obj
def quarantine_list(
    settings: Settings, as_json: bool, limit: int, offset: int, every: bool
) -> None:
    """Quarantined mail, oldest first."""
    with _core(settings) as core, store.transaction(core.engine) as session:
        page = views.quarantine_page(session, _window(limit, offset, every))

    def line(row: dict[str, Any]) -> list[object]:
        return [row[key] for key in ("id", "received_at", "source", "message_id", "error")]

    _show(page, as_json, line, right=1)


@quarantine.command(name="replay")
@click.argument("inbound_id", required=False, type=int)
@click.option("--all", "replay_all", is_flag=True)
@click.pass_obj
def quarantine_replay(settings: Settings, inbound_id: int | None, replay_all: bool) -> None:
    """Run quarantined mail through intake again; exit 1 when any stays quarantined."""
    if (inbound_id is None) == (not replay_all):
        _fail("give one ID or --all", 2)
    still = 0
    with _core(settings) as core:
        ids = [inbound_id] if inbound_id is not None else _quarantined_ids(core)
        for each in ids:
            assert each is not None
            try:
                result = core.intake.replay(each)
            except LookupError as exc:
                _fail(str(exc), 1)
            still += result.outcome == "quarantined"
            _echo(f"{each}: {result.outcome} {_tag(settings, result.ticket)} {result.detail}")
    if still:
        _fail(f"{still} of {len(ids)} still quarantined", 1)


def _quarantined_ids(core: Core) -> list[int]:
    with store.transaction(core.engine) as session:
        query = select(Inbound.id).where(Inbound.state == "quarantined")
        return [i for i in session.exec(query).all() if i is not None]


@quarantine.command(name="drop")
@click.argument("inbound_id", required=False, type=int)
@click.option("--older-than", metavar="AGE", help="every one received more than AGE ago (30d)")
@click.pass_obj
def quarantine_drop(settings: Settings, inbound_id: int | None, older_than: str | None) -> None:
    """Give up on quarantined mail: ID, or all received more than AGE ago.

    The mail stays in the database, marked dropped: `status` no longer counts it (its
    inbound line does), and the same mail delivered again is a duplicate."""
    from mailticket.units import parse_duration

    if (inbound_id is None) == (older_than is None):
        _fail("give one ID or --older-than AGE", 2)
    try:
        age = parse_duration(older_than) if older_than is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from None
    with _core(settings) as core, store.transaction(core.engine) as session:
        before = core.clock() - age if age is not None else None
        dropped = store.drop_quarantined(session, inbound_id=inbound_id, received_before=before)
    if inbound_id is not None and not dropped:
        _fail(f"no quarantined mail with id {inbound_id}", 1)
    for row_id, message_id in dropped:
        _echo(f"{row_id}: dropped {message_id}")
    if older_than is not None:
        _echo(f"{len(dropped)} dropped")


# -- database and health ----------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema."""


@db.command()
@click.pass_obj
def upgrade(settings: Settings) -> None:
    """Create the database's schema, or bring it to this version; run it again: no change.

    Also generates ``tickets.secret`` when unset, so daemons started together share it."""
    database = settings.database
    engine = store.make_engine(database.url, busy_timeout=database.busy_timeout.total_seconds())
    try:
        changed = store.upgrade(engine)
        store.secret(engine, settings.tickets.secret)
    except TemporaryFailure as exc:
        _fail(str(exc), EX_TEMPFAIL)
    finally:
        engine.dispose()
    _echo("schema upgraded" if changed else "schema already current")


@main.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def status(settings: Settings, as_json: bool) -> None:
    """Health at a glance; exit 1 when something needs an admin."""
    from mailticket.ops.status import collect

    with _core(settings) as core:
        report = collect(core)
    if as_json:
        _print_json(report.as_dict())
    else:
        for line in report.lines():
            _echo(line)
    sys.exit(1 if report.problems else 0)


@main.command()
@click.option("--since", default="7d", show_default=True, help="how far back: 24h, 7d, 4w")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def report(settings: Settings, since: str, as_json: bool) -> None:
    """Tickets opened and resolved, response times, SLA breaches, top tags and senders, backlog."""
    from mailticket.ops.report import build_report
    from mailticket.ops.report_text import render
    from mailticket.units import parse_duration

    try:
        window = parse_duration(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    with _core(settings) as core, store.core_transaction(core.engine) as connection:
        now = core.clock()
        result = build_report(connection, now - window, now)
    if as_json:
        _print_json(result.as_dict())
    else:
        click.echo(printable_lines(render(result)), nl=False)
