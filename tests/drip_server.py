"""A loopback TCP server that answers every request one byte at a time, for deadline tests.

Unlike the emulator's drip fault, it can drip without end (an endless header), and it answers
whatever arrives, so it also stands in for an HTTP proxy whose CONNECT answer drips.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from types import TracebackType


class DripServer:
    """Answer with ``payload`` one byte every ``interval`` s; then, if ``endless``, ``a`` on and on.

    "Endless" ends after ``give_up_seconds`` all the same, so that a client without a deadline
    fails its test instead of hanging the run. Without ``wait_for_request`` it starts at once
    (a TLS client speaks first, and never sends an HTTP request's blank line).
    """

    def __init__(
        self,
        payload: bytes,
        *,
        interval: float,
        endless: bool = False,
        give_up_seconds: float = 10.0,
        wait_for_request: bool = True,
    ) -> None:
        self.payload = payload
        self.wait_for_request = wait_for_request
        self.interval = interval
        self.endless = endless
        self.give_up_seconds = give_up_seconds
        self.connections = 0
        self._stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, name="drip-accept")

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def __enter__(self) -> DripServer:
        self._accepter.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._accepter.join()
        for thread in self._threads:
            thread.join()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(connection,), name="drip")
            self._threads.append(thread)
            thread.start()

    def _bytes(self) -> Iterator[bytes]:
        for index in range(len(self.payload)):
            yield self.payload[index : index + 1]
        give_up = time.monotonic() + self.give_up_seconds
        while self.endless and time.monotonic() < give_up:
            yield b"a"

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(5)
            received = b""
            try:
                while self.wait_for_request and b"\r\n\r\n" not in received:
                    chunk = connection.recv(4096)
                    if not chunk:
                        return
                    received += chunk
                for byte in self._bytes():
                    connection.sendall(byte)
                    if self._stopping.wait(self.interval):
                        return
            except OSError:
                return  # the client hung up, as it should once its deadline passed
