"""``mailticket serve``: one event loop, one AsyncExitStack of listeners and workers.

SIGTERM/SIGINT stop accepting, let in-flight mails commit, then exit 0.
SIGHUP reloads rules (a bad edit keeps the last good rules).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import AsyncExitStack

from mailticket.core import Core
from mailticket.outbox import OutboxWorker
from mailticket.settings import Settings
from mailticket.smtp_inbox import InboxHandler, start_smtp
from mailticket.transport import build_transport

log = logging.getLogger(__name__)
DRAIN_TIMEOUT = 30.0


Ready = Callable[[dict[str, int]], None]


async def serve(
    core: Core, *, stop: asyncio.Event | None = None, ready: Ready | None = None
) -> int:
    """Run until SIGTERM/SIGINT (or ``stop`` when given, e.g. by tests); returns the exit code."""
    settings = core.settings
    if stop is None:
        stop = asyncio.Event()
        _install_signals(stop, core)
    ports: dict[str, int] = {}
    async with AsyncExitStack() as stack:
        writer = _writer(core)
        if writer is not None:
            stack.callback(writer.shutdown)  # last out: after every mail has committed
        worker = OutboxWorker(
            core.engine, build_transport(settings.outbound), settings.outbound, core.clock, writer
        )
        core.on_commit.append(lambda: _threadsafe_wake(worker))
        worker_task = asyncio.create_task(worker.run(stop), name="outbox")
        stack.push_async_callback(_finish, worker_task)
        stack.callback(stop.set)  # unwinding for any reason stops the worker first
        if settings.smtp.enabled:
            ports["smtp"] = await _start_listener(stack, core, writer)
        log.info("mailticket ready")
        if ready is not None:
            ready(ports)
        await stop.wait()
        log.info("stopping: finishing in-flight work")
    return 0


def _writer(core: Core) -> ThreadPoolExecutor | None:
    """SQLite takes one writer at a time: queue writes on one thread instead of letting
    threads wait on the file lock (its busy handler sleeps in steps of up to 100 ms)."""
    if core.engine.dialect.name != "sqlite":
        return None
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")


async def _start_listener(stack: AsyncExitStack, core: Core, writer: Executor | None) -> int:
    """Listen; on the way out, stop accepting first, then let in-flight mails commit."""
    smtp = core.settings.smtp
    loop = asyncio.get_running_loop()

    async def submit(raw: bytes) -> object:
        return await loop.run_in_executor(writer, core.intake.submit, raw, "smtp")

    handler = InboxHandler(submit, smtp.accept, smtp.max_message_size)
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
    loop.add_signal_handler(signal.SIGHUP, core.rules.reload)
