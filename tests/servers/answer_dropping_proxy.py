"""A loopback HTTP proxy that forwards requests to one server and can lose an answer on the way.

It stands where a network would drop a response: the request reaches the server, which applies
it and answers, and the proxy then closes the client's connection without passing the answer on
(the client sees the connection closed before a response). Which request loses its answer is
chosen by the AWS operation it names (the JSON protocol's ``X-Amz-Target`` header), one shot at
a time. Headers are forwarded unchanged, ``Host`` included, so SigV4 signatures stay valid.

It can also answer one request itself with an AWS JSON error (``refuse_next``) without
forwarding it, for the error codes moto never sends (throttling, a 500, a limit).
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Collection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "content-length",
    }
)


class AnswerDroppingProxy:
    """Forwards ``http://127.0.0.1:<port>`` to ``upstream_host:upstream_port``."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._lock = threading.Lock()
        self._drop_operations: frozenset[str] = frozenset()
        self._refusals: dict[str, tuple[int, str]] = {}
        #: The operations whose answers were dropped, in order.
        self.dropped: list[str] = []
        #: Every operation forwarded, in order.
        self.forwarded: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> AnswerDroppingProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def drop_next_answer(self, operations: Collection[str]) -> None:
        """Lose the answer of the next request for one of ``operations`` (``PutSecretValue``)."""
        with self._lock:
            self._drop_operations = frozenset(operations)

    def refuse_next(self, operation: str, status: int, code: str) -> None:
        """Answer the next request for ``operation`` with AWS error ``code``, unforwarded."""
        with self._lock:
            self._refusals[operation] = (status, code)

    def _take_refusal(self, operation: str) -> tuple[int, str] | None:
        with self._lock:
            return self._refusals.pop(operation, None)

    def _take_drop(self, operation: str) -> bool:
        with self._lock:
            self.forwarded.append(operation)
            if operation in self._drop_operations:
                self._drop_operations = frozenset()
                self.dropped.append(operation)
                return True
            return False

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without this, Nagle's algorithm and the
            # client's delayed ACK add 40 ms to every answer.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                self._forward()

            def do_GET(self) -> None:
                self._forward()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return None  # quiet: the test output is for the tests

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                target = self.headers.get("X-Amz-Target") or ""
                operation = target.rsplit(".", 1)[-1]
                refusal = proxy._take_refusal(operation)
                if refusal is not None:
                    status, code = refusal
                    error = {"__type": code, "message": f"refused by the test proxy: {body!r}"}
                    self._answer(status, "Refused", [], json.dumps(error).encode())
                    return
                upstream = http.client.HTTPConnection(*proxy._upstream, timeout=30)
                try:
                    upstream.putrequest(
                        self.command, self.path, skip_host=True, skip_accept_encoding=True
                    )
                    for name, value in self.headers.items():
                        if name.lower() not in _HOP_BY_HOP:
                            upstream.putheader(name, value)
                    upstream.putheader("Content-Length", str(len(body)))
                    upstream.endheaders(body)
                    answer = upstream.getresponse()
                    data = answer.read()
                    headers = answer.getheaders()
                    status, reason = answer.status, answer.reason
                finally:
                    upstream.close()
                if proxy._take_drop(operation):
                    # Applied upstream; the client gets no answer at all.
                    self.close_connection = True
                    return
                self._answer(status, reason, headers, data)

            def _answer(
                self, status: int, reason: str, headers: list[tuple[str, str]], data: bytes
            ) -> None:
                self.send_response_only(status, reason)
                for name, value in headers:
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                if not headers:
                    self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
