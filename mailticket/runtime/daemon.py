"""``mailticket serve``: one event loop, one AsyncExitStack of listeners and workers.

SIGTERM/SIGINT stop accepting, let in-flight mails commit, then exit 0.
SIGHUP, or an edit of the rules file, reloads the rules (a bad edit keeps the last good).
systemd hears READY=1 once listeners, pollers and the database are up, then watchdog pings.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import ssl
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import datetime

from mailticket.errors import TemporaryFailure
from mailticket.followup.scheduler import run_sweeps
from mailticket.followup.sweep import FollowupSweep
from mailticket.inbound.imap import run_imap_accounts
from mailticket.inbound.imap_ledger import account_name
from mailticket.inbound.smtp import InboxHandler, start_smtp
from mailticket.intake import Result, Store
from mailticket.ops import heartbeat, metrics
from mailticket.ops.sd_notify import Notifier, keep_alive
from mailticket.outbound.outbox import OutboxWorker, UnitStore
from mailticket.outbound.transport import build_transport
from mailticket.runtime.core import Core
from mailticket.runtime.rules_watch import watch_rules
from mailticket.runtime.store_process import StoreProcess
from mailticket.runtime.warm_up import settle_garbage_collector
from mailticket.runtime.writer import Writer
from mailticket.settings import Settings
from mailticket.store import core_transaction

log = logging.getLogger(__name__)
DRAIN_TIMEOUT = 30.0


Ready = Callable[[dict[str, int]], None]


async def serve(
    core: Core,
    *,
    stop: asyncio.Event | None = None,
    ready: Ready | None = None,
    notifier: Notifier | None = None,
) -> int:
    """Run until SIGTERM/SIGINT (or ``stop`` when given, e.g. by tests); returns the exit code."""
    settings = core.settings
    transport = build_transport(settings.outbound)  # a bad DKIM key: refuse before anything runs
    notifier = notifier or Notifier()
    core.rules.observers.append(metrics.observe_rules_reload)
    if stop is None:
        stop = asyncio.Event()
        _install_signals(stop, core)
    ports: dict[str, int] = {}
    async with AsyncExitStack() as stack:
        writer = Writer(core.engine)
        stack.callback(writer.shutdown)  # last out: after every mail has committed
        store, units = await _start_store(stack, core, writer)
        me = heartbeat.Instance.this_process(core.clock())
        await _register(core, me, writer)  # before the worker claims: dead claims are free
        if core.parser is not None:  # the first mails must not wait for the workers to start
            await asyncio.to_thread(core.parser.start)
        worker = OutboxWorker(
            core.engine,
            transport,
            settings.outbound,
            core.clock,
            units,
            on_outcome=metrics.observe_delivery,
            claimant=me.name,
        )
        core.on_commit.append(lambda: _threadsafe_wake(worker))
        worker_task = asyncio.create_task(worker.run(stop), name="outbox")
        stack.push_async_callback(_finish, worker_task)
        stack.callback(stop.set)  # unwinding for any reason stops the worker first
        if settings.metrics.port is not None:
            exporter = metrics.start_metrics(
                settings.metrics.port, settings.metrics.host, core.engine, core.clock
            )
            stack.callback(exporter.close)
            ports["metrics"] = exporter.port
        listeners = []
        if settings.smtp.enabled:
            ports["smtp"] = await _start_listener(stack, core, store)
            listeners.append(f"smtp {settings.smtp.host}:{ports['smtp']}")
        if settings.imap:
            imap = run_imap_accounts(
                settings.imap,
                submitter(core, store, "imap"),
                core.engine,
                core.clock,
                stop,
                writer=writer,
            )
            stack.push_async_callback(_finish, asyncio.create_task(imap, name="imap"))
        _background(stack, watch_rules(core.rules, stop), "rules-watch")
        sweep = FollowupSweep(
            core.engine,
            settings.tickets,
            core.rules,
            core.renderer,
            core.signer,
            core.clock,
            on_action=metrics.observe_reminder,
            agent_language=settings.agents.language,
        )
        swept: list[datetime] = []

        def sweep_and_note() -> int:
            taken = sweep.run()
            swept[:] = [core.clock()]
            return taken

        sweeps = run_sweeps(sweep_and_note, settings.scheduler.sweep_interval, stop, writer)
        _background(stack, sweeps, "followup")
        pollers = ", ".join(account_name(a) for a in settings.imap)

        def liveness() -> heartbeat.Liveness:
            last_sweep = swept[0] if swept else None
            running = not worker_task.done()
            outbox_at = worker.last_round_at if running else None
            return heartbeat.Liveness(", ".join(listeners), pollers, last_sweep, outbox_at)

        beats = heartbeat.run_heartbeat(core.engine, me, liveness, core.clock, stop, writer)
        _background(stack, beats, "heartbeat")
        stack.callback(stop.set)  # unwinding for any reason stops pollers and sweeps first
        settle_garbage_collector()
        stack.callback(gc.unfreeze)  # a process that goes on (tests) collects them again
        if not settings.agents.require_authenticated:
            log.warning(
                "agents.require_authenticated = false: a forged From acts as an agent "
                "(closes tickets, writes to requesters from the support address)"
            )
        log.info("mailticket ready")
        notifier.ready(", ".join(f"{name} {port}" for name, port in ports.items()))
        _background(stack, keep_alive(notifier, stop), "watchdog")
        if ready is not None:
            ready(ports)
        await stop.wait()
        notifier.stopping("finishing in-flight work")
        log.info("stopping: finishing in-flight work")
    return 0


async def _register(core: Core, me: heartbeat.Instance, writer: Writer) -> None:
    """This daemon's heartbeat row; the outbox claims of a dead instance on this host are
    taken back now, not when their lease ends. The database down: the beats retry."""

    def register() -> list[str]:
        with core_transaction(core.engine) as connection:
            return heartbeat.register(connection, me, core.clock(), heartbeat.process_alive)

    try:
        taken = await asyncio.get_running_loop().run_in_executor(writer, register)
    except Exception as exc:
        log.warning("heartbeat: not registered yet: %s", exc)
        return
    for note in taken:
        log.warning("%s", note)


def _background(stack: AsyncExitStack, work: Awaitable[None], name: str) -> None:
    task: asyncio.Task[None] = asyncio.ensure_future(work)
    task.set_name(name)
    stack.push_async_callback(_finish, task)


async def _start_store(
    stack: AsyncExitStack, core: Core, writer: Writer
) -> tuple[Store, UnitStore]:
    """Where intake's and the outbox's transactions run (``database.writer``): a process
    of their own, or the daemon's writer thread; warmed up before the listener opens.
    Stopped after the listeners have drained and the outbox worker has stopped."""
    if core.settings.database.writer == "thread":
        await asyncio.to_thread(core.warm_up)
        return core.intake.in_thread(writer), writer
    await asyncio.to_thread(core.renderer.compile_all)  # the sweeps render here
    process = StoreProcess(core.settings, core.rules)
    stack.push_async_callback(asyncio.to_thread, process.close)
    await asyncio.to_thread(process.start)
    core.rules.observers.append(process.reload_rules)
    return process.submit, process


def submitter(
    core: Core, store: Store, source: str
) -> Callable[[bytes, bool, bool], Awaitable[Result]]:
    """``submit(raw, notify)`` for an edge: parse (nearby when small, else in the pool),
    commit through ``store``."""
    parse = core.parser.submit_nearby if core.parser is not None else None

    async def submit(raw: bytes, notify: bool = True, trusted: bool = False) -> Result:
        started = time.perf_counter()
        try:
            result = await core.intake.accept(
                raw, source, notify=notify, run=store, parse=parse, trusted=trusted
            )
        except TemporaryFailure:
            metrics.observe_intake(source, "tempfail", time.perf_counter() - started)
            raise
        metrics.observe_intake(
            source,
            result.outcome,
            time.perf_counter() - started,
            opened=result.detail == "new",
            automatic=result.automatic,
        )
        return result

    return submit


async def _start_listener(stack: AsyncExitStack, core: Core, store: Store) -> int:
    """Listen; on the way out, stop accepting first, then let in-flight mails commit."""
    smtp = core.settings.smtp
    submit = submitter(core, store, "smtp")

    relays = core.settings.agents.trusted_relays
    handler = InboxHandler(submit, smtp.accept, smtp.max_message_size, relays)
    server = await start_smtp(
        handler,
        smtp.host,
        smtp.port,
        max_size=smtp.max_message_size,
        tls_context=_tls(core.settings),
    )
    stack.push_async_callback(_drain, handler)
    stack.callback(server.close)
    port: int = server.sockets[0].getsockname()[1]
    log.info("smtp listening on %s:%s", smtp.host, port)
    return port


def _tls(settings: Settings) -> ssl.SSLContext | None:
    if settings.smtp.tls_cert is None or settings.smtp.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.smtp.tls_cert, settings.smtp.tls_key)
    return context


async def _drain(handler: InboxHandler) -> None:
    """Wait until every mail whose DATA arrived has been committed and answered."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DRAIN_TIMEOUT
    while handler.in_flight and loop.time() < deadline:
        await asyncio.sleep(0.05)


async def _finish(task: asyncio.Task[None]) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(task, timeout=DRAIN_TIMEOUT)


def _threadsafe_wake(worker: OutboxWorker) -> None:
    loop = worker.loop
    if loop is not None:
        loop.call_soon_threadsafe(worker.wake)


def _install_signals(stop: asyncio.Event, core: Core) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, core.rules.reload)  # observers count it
