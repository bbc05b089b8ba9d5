"""Run the real daemon in a background thread with its own event loop, for socket tests."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

from mailticket.runtime.core import Core
from mailticket.runtime.daemon import serve


class DaemonThread:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.ports: dict[str, int] = {}
        self.exit_code: int | None = None
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="daemon", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced to the test by __enter__/stop
            self.error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()

        def ready(ports: dict[str, int]) -> None:
            self.ports = ports
            self._ready.set()

        self.exit_code = await serve(self.core, stop=self._stop, ready=ready)

    def __enter__(self) -> DaemonThread:
        self._thread.start()
        if not self._ready.wait(60) or self.error is not None:  # a loaded CI machine
            raise RuntimeError(f"daemon did not become ready: {self.error!r}") from self.error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
