"""A deadline for each HTTP request as a whole, enforced at the socket.

httpx's timeouts restart at every byte: a server that drips one byte a second could stretch a
read for ever. Here every socket operation of a connection (connect, TLS, each read and write)
gets as its timeout only what is left until the deadline of the request running in this thread
(a ContextVar), so connect, TLS, sending, the headers and the whole body together end by it.
Name resolution is the one step the deadline cannot cut short (the system resolver has its own).

Shared by the ProjectManager client (:mod:`rotator.client`) and the Kubernetes connection
(:mod:`rotator.kube`), so every HTTP request the rotator makes keeps the same bound. It knows
nothing of either.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from ssl import SSLContext
from typing import Any

import httpcore
import httpx

#: The monotonic instant by which the request running in this thread must be over (None: none).
current_deadline: ContextVar[float | None] = ContextVar("rotator_request_deadline", default=None)


@contextmanager
def request_deadline(seconds: float) -> Iterator[None]:
    """Every request made inside must be over ``seconds`` from now (nested: the inner wins)."""
    token = current_deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        current_deadline.reset(token)


def time_left(timeout: float | None, expired: type[Exception]) -> float | None:
    """``timeout`` shrunk to what is left of this thread's request; ``expired`` once none is."""
    deadline = current_deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the request's deadline passed")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the running request's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, time_left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, time_left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        remaining = time_left(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, remaining))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """Opens TCP connections (then TLS, direct or through a proxy) as :class:`DeadlineStream`.

    Neither client uses Unix sockets, so the base class's refusal of them stands.
    """

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        remaining = time_left(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(
            self._inner.connect_tcp(host, port, remaining, local_address, socket_options)
        )


def enforce_deadlines(http: httpx.Client) -> None:
    """Make every httpx transport of ``http`` open its connections through DeadlineBackend.

    httpx 0.28 has no public way to choose httpcore's network backend, so this reaches into
    ``HTTPTransport._pool`` (the direct route and each proxy route taken from the
    environment). Should a future httpx move it, this refuses (RuntimeError) rather than let a
    client run without its deadline. Transports given by the caller (tests' MockTransport)
    are theirs.
    """
    routes: list[httpx.BaseTransport | None] = [http._transport, *http._mounts.values()]
    for transport in routes:
        if not isinstance(transport, httpx.HTTPTransport):
            continue
        pool = getattr(transport, "_pool", None)
        if not isinstance(pool, httpcore.ConnectionPool) or not hasattr(pool, "_network_backend"):
            raise RuntimeError(  # pragma: no cover - only a different httpx gets here
                "this httpx version hides its connection pool: cannot enforce request deadlines"
            )
        if not isinstance(pool._network_backend, DeadlineBackend):
            pool._network_backend = DeadlineBackend(pool._network_backend)
