"""A TCP proxy that provokes real network faults between a client and a real server:
server lines split across two writes (what trips imapclient's ``idle_check``,
mjs/imapclient#519), or the connection cut in the middle of a response."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType


class Proxy:
    def __init__(
        self,
        target: tuple[str, int],
        *,
        split: bool = False,
        cut_on: bytes | None = None,
    ) -> None:
        """``split``: send every server chunk in two writes 20 ms apart. ``cut_on``: the
        first time a server chunk contains these bytes, forward half of it and drop the
        connection (once)."""
        self._target = target
        self._split = split
        self._cut_on = cut_on
        self.cuts = 0
        self.client_bytes = bytearray()  # everything clients sent, to check what leaked
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="proxy", daemon=True)

    def __enter__(self) -> Proxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._thread.join(5)
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            server = socket.create_connection(self._target)
            with self._lock:
                self._sockets += [client, server]
            for source, sink, downstream in ((client, server, False), (server, client, True)):
                threading.Thread(
                    target=self._pump, args=(source, sink, downstream), daemon=True
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket, downstream: bool) -> None:
        with contextlib.suppress(OSError):  # either side closing ends the pump
            while data := source.recv(65536):
                if not downstream:
                    self.client_bytes += data
                    sink.sendall(data)
                elif self._cut_on is not None and not self.cuts and self._cut_on in data:
                    self.cuts += 1
                    sink.sendall(data[: len(data) // 2])
                    break
                elif self._split and len(data) > 1:
                    sink.sendall(data[: len(data) // 2])
                    time.sleep(0.02)
                    sink.sendall(data[len(data) // 2 :])
                else:
                    sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
