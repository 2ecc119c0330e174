"""Real receivers of notifications on loopback: an HTTP server that records every request (for
Apprise's ``json://`` and for the webhook) and can answer 500, hang or answer slowly; an SMTP
server (aiosmtpd) that records every message (for ``mailto://``).

Responsible for: accepting what the rotator sends over real sockets and keeping every byte of
it for the test to search. Must not know: the rotator; what a request should contain.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from tests.cli_support import closed_port


@dataclass(frozen=True)
class Received:
    """One HTTP request as it arrived."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpRecorder:
    """Records every request; answers ``status`` after ``delay`` seconds (``hang``: never
    answers until stopped)."""

    status: int = 200
    delay: float = 0.0
    hang: bool = False
    requests: list[Received] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def bodies(self) -> bytes:
        """Every byte received: bodies, paths and headers."""
        return b"\n".join(
            r.path.encode() + b"\n" + repr(r.headers).encode() + b"\n" + r.body
            for r in self.requests
        )

    def start(self) -> HttpRecorder:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                recorder.requests.append(
                    Received("POST", self.path, dict(self.headers.items()), body)
                )
                if recorder.hang:
                    recorder._stopping.wait(30)
                    return
                if recorder.delay:
                    time.sleep(recorder.delay)
                self.send_response(recorder.status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@contextmanager
def http_recorder(**options: Any) -> Iterator[HttpRecorder]:
    recorder = HttpRecorder(**options).start()
    try:
        yield recorder
    finally:
        recorder.stop()


@dataclass
class SmtpRecorder:
    """Every message the SMTP server accepted: envelope and raw content."""

    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
        )
        return "250 Message accepted for delivery"


@contextmanager
def smtp_server() -> Iterator[tuple[SmtpRecorder, int]]:
    """A real SMTP server on a free loopback port: (what it received, its port)."""
    recorder = SmtpRecorder()
    port = closed_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield recorder, port
    finally:
        controller.stop()


@contextmanager
def silent_server() -> Iterator[int]:
    """A loopback TCP server that accepts connections and never says a word (an SMTP server
    that hangs before its greeting): its port."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    stopping = threading.Event()

    def accept() -> None:
        while not stopping.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            accepted.append(connection)

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stopping.set()
        listener.close()
        for connection in accepted:
            connection.close()
