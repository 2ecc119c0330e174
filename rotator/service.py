"""``rotator serve``: passes on a cron schedule (APScheduler 3), health and metrics over HTTP,
and a graceful stop on SIGTERM, SIGINT or SIGHUP.

- The pass runs on ROTATOR_SCHEDULE in ROTATOR_TIMEZONE (POSIX cron semantics, built by
  ``rotator.schedule``), at most one at a time, missed runs coalesced into one, with a misfire
  grace time; and once right at start unless ROTATOR_RUN_ON_START=false.
- ``/healthz``: the process and its scheduler are alive. ``/readyz``: settings were valid and the
  scheduler is running; the API's health is deliberately not part of readiness (a pod taken out
  of its Service could no longer be scraped just when its alerts matter): it goes into metrics.
  ``/metrics``: the Prometheus text format.
- With ROTATOR_TRIGGER_TOKEN set, ``POST /v1/rotate`` and ``POST /v1/leaks``
  (``rotator.triggers``). A scheduled pass and a trigger never run at once: both hold the
  service's work lock, which a trigger waits for up to ROTATOR_SHUTDOWN_TIMEOUT_SECONDS.
- On a signal, scheduling stops and triggers are refused (503); the pass or trigger in flight
  finishes the credential it is on (the engine never stops between create and deliver) and then
  stops. Exit 0, or 1 when it had not finished after ROTATOR_SHUTDOWN_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler

from rotator.app import STOP_SIGNALS, build_notifier, build_runner, run_pass_with_metrics
from rotator.errors import ConfigError
from rotator.logging import get_logger
from rotator.metrics import Metrics
from rotator.schedule import parse_schedule
from rotator.settings import Settings
from rotator.triggers import MAX_BODY_BYTES, NOT_FOUND, PATHS, Answer, Triggers

#: A pass that could not start on time (the process was busy or suspended) may still start this
#: long after its fire time; later than that it is skipped and the next one runs.
MISFIRE_GRACE_SECONDS = 3600
_JOB_ID = "rotation-pass"


class Service:
    """The long-lived process: scheduler, HTTP endpoints, signal handling."""

    def __init__(self, settings: Settings, *, host: str | None = None) -> None:
        self._settings = settings
        self._log = get_logger()
        self._metrics = Metrics()
        # Set once on a stop signal: stops scheduling, and the engine's pass after its credential.
        self._stopping = threading.Event()
        # Held by a scheduled pass or a trigger: one at a time, and what a stop waits for.
        self._work = threading.Lock()
        # A leak report is told as a pass's events are (leak.matched / leak.unmatched).
        leak_notifier = build_notifier(settings, self._metrics)
        self.triggers = Triggers(
            settings, work=self._work, stop=self._stopping, metrics=self._metrics,
            send_events=leak_notifier.send,
        )  # fmt: skip
        self._engine = build_runner(settings, stop_requested=self._stopping)
        self._trigger = parse_schedule(settings.schedule, settings.timezone)
        self._zone = ZoneInfo(settings.timezone)
        self._scheduler = BackgroundScheduler(timezone=self._zone)
        address = (host or settings.http_host, settings.http_port)
        try:
            self._http = ThreadingHTTPServer(address, _handler_for(self))
        except OSError as exc:
            # A port in use or an address not on this host: a configuration error, not a crash.
            raise ConfigError(
                [
                    f"ROTATOR_HTTP_PORT: cannot listen on {address[0]}:{address[1]}: "
                    f"{exc.strerror or type(exc).__name__}"
                ]
            ) from None
        self._http.daemon_threads = True
        self._http_thread = threading.Thread(
            target=self._http.serve_forever, name="rotator-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._http.server_address[1])

    # ------------------------------------------------------------------ health

    def healthy(self) -> bool:
        return self._http_thread.is_alive() and (self._scheduler.running or self._stopping.is_set())

    def ready(self) -> bool:
        return self._scheduler.running and not self._stopping.is_set()

    def metrics_text(self) -> bytes:
        return self._metrics.exposition()

    def next_run_time(self) -> datetime | None:
        """When the scheduler next starts a pass (in ROTATOR_TIMEZONE); None when none is due."""
        job = self._scheduler.get_job(_JOB_ID)
        next_fire: datetime | None = job.next_run_time if job else None
        return next_fire

    # --------------------------------------------------------------- lifecycle

    def _run_pass(self) -> None:
        with self._work:  # a trigger in flight finishes first
            if self._stopping.is_set():
                return
            try:
                run_pass_with_metrics(
                    self._settings, self._engine, self._metrics, stop=self._stopping
                )
            except Exception as exc:  # noqa: BLE001 - a pass must never kill the scheduler
                self._log.error("pass.crashed", error=type(exc).__name__)
        # From the trigger, not the job: the scheduler may not have advanced the job yet.
        next_fire = self._trigger.get_next_fire_time(None, datetime.now(self._zone))
        self._log.info("schedule.next", next_fire_time=next_fire.isoformat() if next_fire else None)

    def start(self) -> None:
        self._http_thread.start()
        options: dict[str, Any] = {}
        if self._settings.run_on_start:
            options["next_run_time"] = datetime.now(self._zone)
        self._scheduler.add_job(
            self._run_pass,
            trigger=self._trigger,
            id=_JOB_ID,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=MISFIRE_GRACE_SECONDS,
            **options,
        )
        self._scheduler.start()
        self._log.info(
            "service.started",
            http_port=self.port,
            schedule=self._settings.schedule,
            timezone=self._settings.timezone,
        )

    def request_stop(self) -> None:
        """Stop scheduling and ask a pass in flight to stop after its current credential."""
        self._stopping.set()

    def wait_and_stop(self) -> int:
        """Block until a stop is requested, then shut down; returns the exit code."""
        self._stopping.wait()
        self._log.info("service.stopping", pass_in_flight=self._work.locked())
        self._scheduler.shutdown(wait=False)
        timeout = self._settings.shutdown_timeout_seconds
        # The pass or trigger in flight stops after its credential and lets go of the lock.
        finished = self._work.acquire(timeout=timeout)
        self._http.shutdown()
        self._http.server_close()
        if not finished:
            self._log.error("service.abandoned", shutdown_timeout_seconds=timeout)
            return 1
        self._log.info("service.stopped")
        return 0


def _handler_for(service: Service) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        # A client that stops sending (a half-sent trigger body, an idle connection) frees its
        # thread after this many seconds instead of holding it for ever.
        timeout = 30

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
            """Quiet: health probes every few seconds would drown the rotation events."""

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, service.metrics_text(), "text/plain; version=0.0.4; charset=utf-8")
            elif path == "/healthz":
                ok = service.healthy()
                self._send(200 if ok else 503, b"ok\n" if ok else b"unhealthy\n")
            elif path == "/readyz":
                ok = service.ready()
                self._send(200 if ok else 503, b"ready\n" if ok else b"not ready\n")
            elif path in PATHS and service.triggers.enabled:
                self._answer(Answer(405, "method not allowed\n", (("Allow", "POST"),)))
            else:
                self._answer(NOT_FOUND)

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0]
            if path not in PATHS or not service.triggers.enabled:
                self.close_connection = True  # its body is left unread
                self._answer(NOT_FOUND)
                return
            if self.headers.get("Transfer-Encoding"):
                self.close_connection = True  # a chunked body is not read
                self._answer(Answer(411, {"error": "send the body with a Content-Length"}))
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY_BYTES:
                self.close_connection = True  # the body is left unread
                self._answer(
                    Answer(413, {"error": f"the body must be 0 to {MAX_BODY_BYTES} bytes"})
                )
                return
            body = self.rfile.read(length)
            self._answer(service.triggers.handle(path, dict(self.headers.items()), body))

        def _answer(self, answer: Answer) -> None:
            body, content_type = answer.encoded()
            self.send_response(answer.status)
            for name, value in answer.headers:
                self.send_header(name, value)
            self._send_body(body, content_type)

        def _send(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self._send_body(body, content_type)

        def _send_body(self, body: bytes, content_type: str) -> None:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def serve(settings: Settings) -> int:
    """Run until SIGTERM, SIGINT or SIGHUP; returns the exit code."""
    service = Service(settings)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        get_logger().info("service.signal", signal=signal.Signals(signum).name)
        service.request_stop()

    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)
    service.start()
    code = service.wait_and_stop()
    if code != 0:
        # The pass thread is still running and the interpreter would join it on the way out
        # (concurrent.futures' atexit hook), overstaying ROTATOR_SHUTDOWN_TIMEOUT_SECONDS by as
        # long as the stuck request takes. Abandoning it is the point: leave now.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
