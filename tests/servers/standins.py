"""Small loopback HTTP servers that stand in where a real one cannot run here.

- :class:`AnswerDroppingProxy` forwards every request to a real server and passes the answer
  back, except that once armed it forwards the next matching request and then closes the
  connection without answering: a write that landed but whose answer was lost. It can also run
  an action just before it forwards a matching request (another writer slipping in between a
  client's check and its write), and rewrite requests and answers (``hide_fields``: take fields
  out of JSON bodies, to show a client the API of an older server).
- :class:`TokenReviewStandIn` is the one Kubernetes API endpoint OpenBao's Kubernetes auth
  calls (``POST /apis/authentication.k8s.io/v1/tokenreviews``): it says a token is that of a
  service account when the token is one it was told about, and records each review. With it the
  real OpenBao Kubernetes auth method logs a pod in; no kube-apiserver can run here.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

# Hop-by-hop headers are the proxy's own business, never forwarded.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "content-length", "host"}
)


Matcher = Callable[[str, str], bool]


@dataclass(frozen=True)
class Seen:
    """One request as the client sent it, and the status of the answer the proxy got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _Running:
    """A ThreadingHTTPServer on a free loopback port, served from a thread until stopped."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.owner = self  # type: ignore[attr-defined]
        # A short poll interval: stop() waits for the loop to notice, once per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


class AnswerDroppingProxy(_Running):
    """A forwarding proxy that can lose the answer to one request on purpose."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        #: Every request forwarded, in order.
        self.requests: list[Seen] = []
        self.dropped: list[tuple[str, str]] = []
        #: JSON fields taken out of every request body and every answer (at the top level and
        #: in ``data``), as a server that does not know them would neither take nor give them.
        self.hide_fields: frozenset[str] = frozenset()
        self._drop_next: Matcher | None = None
        self._before_next: tuple[Matcher, Callable[[], object]] | None = None
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=30.0)
        super().__init__(_ProxyHandler)

    def drop_next_answer(self, matches: Matcher) -> None:
        """The next request for which ``matches(method, path)`` holds is forwarded, and its
        answer thrown away: the connection is closed without a response."""
        with self._lock:
            self._drop_next = matches

    def before_next(self, matches: Matcher, action: Callable[[], object]) -> None:
        """Run ``action`` once, just before the next matching request is forwarded."""
        with self._lock:
            self._before_next = (matches, action)

    def _take(self, method: str, path: str) -> tuple[bool, Callable[[], object] | None]:
        with self._lock:
            drop = self._drop_next is not None and self._drop_next(method, path)
            if drop:
                self._drop_next = None
            action = None
            if self._before_next is not None and self._before_next[0](method, path):
                action = self._before_next[1]
                self._before_next = None
            return drop, action

    def _hide(self, raw: bytes) -> bytes:
        if not self.hide_fields or not raw:
            return raw
        try:
            document = json.loads(raw)
        except ValueError:
            return raw
        if not isinstance(document, dict):
            return raw
        for holder in (document, document.get("data")):
            if isinstance(holder, dict):
                for name in self.hide_fields:
                    holder.pop(name, None)
        return json.dumps(document).encode()

    def stop(self) -> None:
        super().stop()
        self._client.close()


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without this, Nagle's algorithm and the client's
    # delayed ACK add 40 ms to every answer.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        return None

    def _forward(self) -> None:
        proxy: AnswerDroppingProxy = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        sent = self.rfile.read(length) if length else b""
        body = proxy._hide(sent)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        drop, action = proxy._take(self.command, self.path)
        if action is not None:
            action()
        answer = proxy._client.request(
            self.command, proxy.upstream + self.path, content=body, headers=headers
        )
        proxy.requests.append(
            Seen(self.command, self.path, dict(headers), sent, answer.status_code)
        )
        if drop:
            proxy.dropped.append((self.command, self.path))
            self.close_connection = True
            return
        content = proxy._hide(answer.content)
        self.send_response(answer.status_code)
        for name, value in answer.headers.items():
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-encoding":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_LIST = _forward  # noqa: N815


class TokenReviewStandIn(_Running):
    """``POST /apis/authentication.k8s.io/v1/tokenreviews`` of a Kubernetes API server."""

    def __init__(self) -> None:
        #: token -> (namespace, service account name, uid) of the accounts it vouches for.
        self.accounts: dict[str, tuple[str, str, str]] = {}
        #: Each review as received: (Authorization header, the request body).
        self.reviews: list[tuple[str | None, dict[str, Any]]] = []
        super().__init__(_TokenReviewHandler)


class _TokenReviewHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        return None

    def do_POST(self) -> None:
        standin: TokenReviewStandIn = self.server.owner  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        standin.reviews.append((self.headers.get("Authorization"), body))
        if self.path != "/apis/authentication.k8s.io/v1/tokenreviews":
            self._answer(404, {"kind": "Status", "status": "Failure", "code": 404})
            return
        account = standin.accounts.get(body.get("spec", {}).get("token", ""))
        status: dict[str, Any] = {"authenticated": False, "error": "invalid bearer token"}
        if account is not None:
            namespace, name, uid = account
            status = {
                "authenticated": True,
                "user": {
                    "username": f"system:serviceaccount:{namespace}:{name}",
                    "uid": uid,
                    "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
                },
                "audiences": body.get("spec", {}).get("audiences") or [],
            }
        self._answer(
            201,
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview",
                "spec": body.get("spec", {}),
                "status": status,
            },
        )

    def _answer(self, status: int, document: dict[str, Any]) -> None:
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
