"""The emulator on the wire: a quiet ThreadingHTTPServer on 127.0.0.1 and the ``Emulator`` facade.

Responsible for: serving the emulated API and the ``/_emulator/*`` control endpoint over HTTP/1.1,
one thread per connection, applying the latency and a fault's delay (both outside the state's
lock, so many requests wait in parallel), dripping an answer byte by byte, dropping
connections, and starting and stopping cleanly (every connection closed, every thread joined,
every wait cut short) so that tests see no ResourceWarning.

Must not know: how the API behaves (that is ``_state``), nor anything of the rotator itself.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from rotator.emulator._state import EmulatorState, Fault, Response, iso_z, parse_time

_CONTROL_PREFIX = "/_emulator/"
#: A connection left idle this long is closed: a backstop so that no handler thread lingers.
_IDLE_TIMEOUT_SECONDS = 30.0
_MAX_BODY_BYTES = 1 << 20


class _Server(ThreadingHTTPServer):
    """Tracks live connections so ``stop`` can close them and join every handler thread."""

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True
    # A benchmark opens many connections at once: the default backlog of 5 would make the
    # kernel drop SYNs, and each dropped one costs the client a one-second retransmit.
    request_queue_size = 128

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def track(self, connection: socket.socket) -> bool:
        """Remember a connection; False when the server is stopping (the caller must quit)."""
        with self._connections_lock:
            if self.stopping.is_set():
                return False
            self._connections.add(connection)
            return True

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Wake every handler blocked reading a kept-alive connection, so its thread ends."""
        with self._connections_lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):  # already closed by the peer
                    connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate small writes: without TCP_NODELAY each response
    # stalls on delayed ACKs (about 40 ms a request on loopback).
    disable_nagle_algorithm = True
    server_version = "ProjectManagerEmulator/1"
    sys_version = ""
    timeout = _IDLE_TIMEOUT_SECONDS

    def setup(self) -> None:
        super().setup()
        if not self.server.track(self.connection):
            self.close_connection = True

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def handle_one_request(self) -> None:
        if self.server.stopping.is_set():
            self.close_connection = True
            return
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Quiet: the request log (``Emulator.request_log``) is where requests are recorded."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(length, _MAX_BODY_BYTES)) if length > 0 else b""

    def _dispatch(self) -> None:
        path = self.path.split("?", 1)[0]
        body = self._read_body()
        emulator = self.server.emulator
        if path.startswith(_CONTROL_PREFIX):
            self._send(_control(emulator, self.command, path, body, self.client_address[0]))
            return
        state = emulator._state
        # Waits are interruptible (stop() sets the event) and hold no lock, so a thousand
        # requests of a benchmark wait side by side and a long delay never holds up shutdown.
        latency = state.latency_seconds()
        if latency > 0 and self.server.stopping.wait(latency):
            self.close_connection = True
            return
        fault = state.take_fault(self.command, path)
        if fault is not None and fault.delay_seconds > 0:
            self.server.stopping.wait(fault.delay_seconds)
        headers = {name.lower(): value for name, value in self.headers.items()}
        response = state.handle(self.command, path, headers, body, fault)
        if fault is not None and fault.drip_ms > 0 and not response.drop:
            self._drip(response, fault.drip_ms / 1000, fault.drip_part)
        else:
            self._send(response)

    def _send(self, response: Response) -> None:
        if response.drop:
            self.close_connection = True
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def _drip(self, response: Response, interval: float, part: str) -> None:
        """Send ``response`` with its ``part`` one byte every ``interval`` seconds.

        Ends early (closing the connection) when the emulator stops or the client hangs up.
        """
        lines = [f"HTTP/1.1 {response.status} {_phrase(response.status)}"]
        lines += [f"Server: {self.version_string()}", f"Date: {self.date_time_string()}"]
        lines += [f"{name}: {value}" for name, value in response.headers.items()]
        lines += [f"Content-Length: {len(response.body)}", "Connection: close"]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.close_connection = True  # whatever happens, this connection is not reused
        for chunk, slow in ((head, part in ("headers", "all")), (response.body, part != "headers")):
            if not slow:
                self.wfile.write(chunk)
                continue
            for index in range(len(chunk)):
                self.wfile.write(chunk[index : index + 1])
                if self.server.stopping.wait(interval):
                    return


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _json_response(status: int, document: object) -> Response:
    return Response(status, json.dumps(document).encode(), {"Content-Type": "application/json"})


def _control(emulator: Emulator, method: str, path: str, body: bytes, client: str) -> Response:
    """The ``/_emulator/*`` endpoint: inspect and steer a running emulator (loopback only)."""
    if client not in ("127.0.0.1", "::1"):
        return _json_response(403, {"error": "the control endpoint answers loopback only"})
    try:
        document = json.loads(body) if body else {}
    except ValueError as exc:
        return _json_response(400, {"error": f"the body is not JSON: {exc}"})
    if not isinstance(document, dict):
        return _json_response(400, {"error": "the body must be a JSON object"})
    try:
        return _control_route(emulator, method, path.removeprefix(_CONTROL_PREFIX), document)
    except (ValueError, KeyError, TypeError) as exc:
        return _json_response(400, {"error": str(exc)})


def _control_route(
    emulator: Emulator, method: str, route: str, document: dict[str, Any]
) -> Response:
    if (method, route) == ("GET", "state"):
        return _json_response(200, emulator._state.snapshot())
    if (method, route) == ("GET", "secrets"):
        return _json_response(200, {"secrets": sorted(emulator.issued_secrets())})
    if (method, route) == ("GET", "requests"):
        return _json_response(200, {"requests": emulator.request_log()})
    if (method, route) == ("POST", "clock"):
        if "now" in document:
            emulator.set_now(parse_time(str(document["now"])))
        elif "advance_seconds" in document:
            emulator.advance(timedelta(seconds=float(document["advance_seconds"])))
        else:
            raise ValueError('expected "now" or "advance_seconds"')
        return _json_response(200, {"now": iso_z(emulator.now())})
    if (method, route) == ("POST", "variants"):
        emulator.set_variants(**document)
        return _json_response(200, {"variants": emulator._state.variants()})
    if (method, route) == ("POST", "faults"):
        emulator._state.add_fault(_fault_from_json(document))
        return _json_response(200, {})
    if (method, route) == ("DELETE", "faults"):
        emulator.clear_faults()
        return _json_response(200, {})
    if (method, route) == ("POST", "workspaces"):
        workspace_id = emulator.add_workspace(str(document["name"]), document.get("id"))
        return _json_response(200, {"id": workspace_id})
    if (method, route) == ("POST", "keys"):
        expires = document.get("expires")
        key_id, secret = emulator.add_key(
            str(document["workspace_id"]),
            str(document["name"]),
            expires=parse_time(str(expires)) if expires else None,
            secret=document.get("secret"),
            key_id=document.get("id"),
            created_by=document.get("created_by"),
        )
        return _json_response(200, {"id": key_id, "secret": secret})
    if (method, route) == ("POST", "users"):
        user_id = emulator.add_user(
            str(document["workspace_id"]),
            document.get("full_name"),
            user_id=document.get("id"),
            email=document.get("email"),
            role=str(document.get("role") or "Admin"),
        )
        return _json_response(200, {"id": user_id})
    if (method, route) == ("POST", "new-key-user"):
        acting_as = document.get("user_id")
        emulator.set_new_key_user(
            str(document["workspace_id"]), str(acting_as) if acting_as else None
        )
        return _json_response(200, {})
    if (method, route) == ("POST", "list-entries"):
        entries = document.get("entries")
        if not isinstance(entries, list):
            raise TypeError('"entries" must be a JSON array')
        emulator.add_list_entries(str(document["workspace_id"]), entries)
        return _json_response(200, {})
    if (method, route) == ("DELETE", "list-entries"):
        emulator.clear_list_entries(document.get("workspace_id"))
        return _json_response(200, {})
    return _json_response(404, {"error": f"no control route {method} /_emulator/{route}"})


def _fault_from_json(document: Mapping[str, Any]) -> Fault:
    known = set(Fault.__dataclass_fields__)
    unknown = set(document) - known
    if unknown:
        raise ValueError(f"unknown fault fields: {sorted(unknown)}")
    if "method" not in document or "path" not in document:
        raise ValueError('a fault needs "method" and "path"')
    return Fault(**document)


class Emulator:
    """The ProjectManager API-key endpoints, emulated on 127.0.0.1 for tests and demos.

    Build it from a seed, ``start()`` it (or use it as a context manager), point a client at
    ``url``; steer it with the clock, variants and faults; inspect it with ``keys``,
    ``issued_secrets`` and ``request_log``. The clock stands still unless set or advanced
    (``clock="frozen"``, for tests), or runs in real time from wherever it was set
    (``clock="real"``, what ``rotator emulator`` uses).
    """

    def __init__(self, seed: Mapping[str, Any] | None = None, *, clock: str = "frozen") -> None:
        self._state = EmulatorState(seed, clock=clock)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        where = self.url if self._server else "stopped"
        return f"Emulator({where})"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, port: int = 0) -> None:
        """Serve on 127.0.0.1:``port`` (0: any free port) in a background thread."""
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        server = _Server(self)
        if port:
            # Re-bind to the asked port (the constructor bound port 0 so it could not fail late).
            server.socket.close()
            server.socket = socket.socket(server.address_family, server.socket_type)
            server.server_address = ("127.0.0.1", port)
            try:
                server.server_bind()
                server.server_activate()
            except OSError:
                server.server_close()
                raise
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="emulator"
        )
        self._thread.start()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running: call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def port(self) -> int:
        """The port being served (addition to the agreed interface)."""
        return int(self.url.rsplit(":", 1)[1])

    def stop(self) -> None:
        """Stop serving: close the listening socket and every connection, join every thread."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.stopping.set()
        server.shutdown()
        thread.join()
        server.close_connections()
        server.server_close()  # joins the handler threads (block_on_close)
        self._server = self._thread = None

    def __enter__(self) -> Emulator:
        self.start(0)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the world ---------------------------------------------------------------------------

    def add_workspace(self, name: str, workspace_id: str | None = None) -> str:
        """Add a workspace (with its one admin user); returns its id."""
        return self._state.add_workspace(name, workspace_id)

    def add_user(
        self,
        workspace_id: str,
        full_name: str | None = None,
        *,
        user_id: str | None = None,
        email: str | None = None,
        role: str = "Admin",
    ) -> str:
        """Add another user (a person) to a workspace; returns its id for ``add_key(created_by=)``.

        A key made by that user lists it as ``createdBy``, ``me`` with that key answers with
        that user, and keys the key creates through the API are that user's too.
        """
        return self._state.add_user(
            workspace_id, full_name, user_id=user_id, email=email, role=role
        )

    def admin_user_id(self, workspace_id: str) -> str:
        """The user id of the workspace's admin, the creator of keys unless told otherwise."""
        return self._state.admin_user_id(workspace_id)

    def add_key(
        self,
        workspace_id: str,
        name: str,
        *,
        expires: datetime | None = None,
        secret: str | None = None,
        key_id: str | None = None,
        created_by: str | None = None,
    ) -> tuple[str, str]:
        """Add a key (expires defaults to the emulator's now + 730 days); returns (id, secret).

        ``created_by`` is the user who made it (default: the workspace's admin); any id is
        accepted, and any string as ``key_id`` (to test ids a client must not put in a path).
        """
        return self._state.add_key(
            workspace_id,
            name,
            expires=expires,
            secret=secret,
            key_id=key_id,
            created_by=created_by,
        )

    def keys(self, workspace_id: str, include_revoked: bool = False) -> list[dict[str, Any]]:
        """The workspace's keys, expired ones included: id, name, expires, revoked, created_by."""
        return self._state.keys(workspace_id, include_revoked)

    def issued_secrets(self) -> set[str]:
        """Every secret ever issued, seeded or created (to prove none leaked anywhere)."""
        return self._state.issued_secrets()

    def key_id_of(self, secret: str) -> str | None:
        """The id of the key ``secret`` belongs to (revoked or expired too), None when never
        issued: lets a test say which key a sink holds without trusting the sink's metadata."""
        return self._state.key_id_of(secret)

    def now(self) -> datetime:
        return self._state.now()

    def set_now(self, moment: datetime) -> None:
        self._state.set_now(moment)

    def advance(self, delta: timedelta) -> None:
        self._state.advance(delta)

    def set_variants(self, **variants: object) -> None:
        """Switch how the emulator answers each unknown of the API (ValueError on a bad one)."""
        self._state.set_variants(**variants)

    def set_latency(self, milliseconds: int) -> None:
        """Answer every API request (not the control endpoint) after ``milliseconds``.

        The same as the ``latency_ms`` variant. Requests wait in parallel, one thread each.
        """
        self._state.set_variants(latency_ms=milliseconds)

    def set_new_key_user(self, workspace_id: str, user_id: str | None) -> None:
        """Make keys created through the API in a workspace act as ``user_id`` (None: as the
        user of the key that creates them, the API's rule): a new key that answers ``me`` as
        another user than the credential that made it."""
        self._state.set_new_key_user(workspace_id, user_id)

    def add_list_entries(self, workspace_id: str, entries: Iterable[object]) -> None:
        """Append raw entries to every List answer of the workspace (``ODD_LIST_ENTRIES``: .NET
        MinValue/MaxValue expires, ids with ``/`` or ``..``, entries that are not keys)."""
        self._state.add_list_entries(workspace_id, entries)

    def clear_list_entries(self, workspace_id: str | None = None) -> None:
        self._state.clear_list_entries(workspace_id)

    def add_fault(
        self,
        method: str,
        path: str,
        *,
        status: int | None = None,
        retry_after: str | None = None,
        delay_seconds: float = 0,
        drop: bool = False,
        has_error_200: bool = False,
        malformed: bool = False,
        apply_then_drop: bool = False,
        times: int = 1,
        skip: int = 0,
        drip_ms: float = 0,
        drip_part: str = "all",
    ) -> None:
        """Queue a fault for requests matching method and path ("*" for any); times -1: forever;
        the first ``skip`` matching requests pass untouched.

        ``drip_ms`` > 0: the answer goes out one byte every ``drip_ms`` ms, its ``drip_part``
        (``headers``, ``body`` or ``all``) only; the connection is then closed.
        """
        self._state.add_fault(
            Fault(
                method=method,
                path=path,
                status=status,
                retry_after=retry_after,
                delay_seconds=delay_seconds,
                drop=drop,
                has_error_200=has_error_200,
                malformed=malformed,
                apply_then_drop=apply_then_drop,
                times=times,
                skip=skip,
                drip_ms=drip_ms,
                drip_part=drip_part,
            )
        )

    def clear_faults(self) -> None:
        self._state.clear_faults()

    def request_log(self) -> list[dict[str, Any]]:
        """The API requests, oldest first (the last 10,000): method, path, status (None when
        dropped), headers (no secrets)."""
        return self._state.request_log()
