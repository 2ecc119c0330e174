"""Where the Vault sink's token comes from: handed in, or from a login that is renewed.

``token``: a provider callable (a static token, or a file read again each time it is asked) is
asked at the first request, at every pass (``refresh_provided``) and after a refusal. ``approle``
and ``kubernetes``: a login at ``auth/<mount>/login`` (role id and secret id; or role and the pod's
service-account token, read again at each login), repeated shortly before the token's TTL runs
out and after a refusal; a token refused again right after such a login is a policy refusal and
triggers no further login. The HTTP request of a login is the sink's (``bind``): this module
knows the bodies and the timing, not the transport. Every method is safe from several threads;
a login happens once however many threads were refused together.

Secrets stay in :class:`~rotator.models.Secret` or in ``hidden()``, which the sink blanks from
any error text; no message here carries one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from rotator.errors import SinkPermissionError
from rotator.models import Secret

#: Where Kubernetes mounts a pod's service-account token.
DEFAULT_JWT_PATH: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
AuthMethod = Literal["token", "approle", "kubernetes"]
AUTH_METHODS: Final = ("token", "approle", "kubernetes")
# Log in again this long before a login token's TTL runs out (capped at a tenth of the TTL), so
# that a request does not set out with a token about to expire.
_RELOGIN_MARGIN_SECONDS: Final = 30.0


@dataclass(frozen=True)
class Login:
    """What a login answered: the token and its TTL in seconds (0: none)."""

    token: Secret
    lease_seconds: int


#: Sends a login: (auth mount, request body, the body's values to blank in errors) -> Login.
LoginSender = Callable[[str, Mapping[str, str], Sequence[str]], Login]


class Auth:
    """Where a request's token comes from, and how a refused one is replaced."""

    _send_login: LoginSender
    _refused_fresh: Secret | None = None

    def bind(self, send_login: LoginSender) -> None:
        self._send_login = send_login

    def token(self) -> Secret | None:
        raise NotImplementedError

    def renew(self, refused: Secret | None) -> bool:
        """After ``refused`` got a 403: whether a different token is now to be tried."""
        raise NotImplementedError

    def refused_when_fresh(self, token: Secret | None) -> None:
        """``token`` was refused again right after :meth:`renew` fetched it."""
        self._refused_fresh = token

    def refresh_provided(self) -> None:
        """Ask a token provider again (once a pass); nothing for a login."""
        return

    def logged_in_token(self) -> Secret | None:
        """The token a login got, to revoke at the end; None for a provided token."""
        return None

    def hidden(self) -> list[str]:
        """Every credential value this auth holds, blanked from any error text."""
        raise NotImplementedError


class ProvidedToken(Auth):
    """A token handed in (static, or read from a file by the provider each time it is asked)."""

    def __init__(self, provider: Callable[[], Secret]) -> None:
        self._provider = provider
        self._lock = threading.Lock()
        self._token: Secret | None = None

    def token(self) -> Secret | None:
        with self._lock:
            if self._token is None:
                self._token = self._ask()
            return self._token

    def renew(self, refused: Secret | None) -> bool:
        with self._lock:
            if self._token is not None and self._token != refused:
                return True  # another thread already picked up a new one
            self._token = self._ask()
            return self._token != refused

    def refresh_provided(self) -> None:
        with self._lock:
            self._token = self._ask()

    def hidden(self) -> list[str]:
        return [] if self._token is None else [self._token.reveal()]

    def _ask(self) -> Secret:
        try:
            return self._provider()
        except OSError as exc:
            raise SinkPermissionError(
                f"cannot read the Vault token: {exc.strerror or type(exc).__name__}"
            ) from exc


class LoginAuth(Auth):
    """A token from a login (AppRole, Kubernetes), renewed by logging in again."""

    def __init__(
        self, mount: str, credentials: Callable[[], dict[str, str]], clock: Callable[[], float]
    ) -> None:
        self._mount = mount
        self._credentials = credentials
        self._clock = clock
        self._lock = threading.Lock()
        self._token: Secret | None = None
        self._renew_at: float | None = None
        self._sent: list[str] = []

    def token(self) -> Secret | None:
        with self._lock:
            if self._token is None or (
                self._renew_at is not None and self._clock() >= self._renew_at
            ):
                self._login()
            return self._token

    def renew(self, refused: Secret | None) -> bool:
        with self._lock:
            if self._token is not None and self._token != refused:
                return True  # another thread already logged in again
            if refused is not None and refused == self._refused_fresh:
                return False
            self._login()
            return True

    def logged_in_token(self) -> Secret | None:
        return self._token

    def hidden(self) -> list[str]:
        return [*self._sent, *([] if self._token is None else [self._token.reveal()])]

    def _login(self) -> None:
        body = self._credentials()
        self._sent = [value for key, value in body.items() if key != "role"]
        login = self._send_login(self._mount, body, self._sent)
        self._token = login.token
        if login.lease_seconds > 0:
            margin = min(_RELOGIN_MARGIN_SECONDS, login.lease_seconds / 10)
            self._renew_at = self._clock() + login.lease_seconds - margin
        else:
            self._renew_at = None  # a token without a TTL (root-like): never expires


def make_auth(
    auth: str,
    *,
    token_provider: Callable[[], Secret] | None,
    role_id: str | None,
    secret_id: Secret | None,
    role: str | None,
    auth_mount: str | None,
    jwt_path: Path,
    clock: Callable[[], float],
    problems: list[str],
) -> Auth:
    if auth == "token":
        if token_provider is None:
            problems.append("ROTATOR_SINK_VAULT_TOKEN: required with auth 'token'")
            return ProvidedToken(lambda: Secret(""))
        return ProvidedToken(token_provider)
    if auth == "approle":
        if not role_id or secret_id is None or not secret_id:
            problems.append(
                "ROTATOR_SINK_VAULT_ROLE_ID, ROTATOR_SINK_VAULT_SECRET_ID: required with auth "
                "'approle'"
            )
        approle_secret = secret_id or Secret("")
        return LoginAuth(
            (auth_mount or "approle").strip("/"),
            lambda: {"role_id": role_id or "", "secret_id": approle_secret.reveal()},
            clock,
        )
    if auth == "kubernetes":
        if not role:
            problems.append("ROTATOR_SINK_VAULT_ROLE: required with auth 'kubernetes'")
        return LoginAuth(
            (auth_mount or "kubernetes").strip("/"),
            lambda: {"role": role or "", "jwt": read_jwt(jwt_path)},
            clock,
        )
    problems.append(f"ROTATOR_SINK_VAULT_AUTH: must be one of {', '.join(AUTH_METHODS)}")
    return ProvidedToken(lambda: Secret(""))


def read_jwt(path: Path) -> str:
    """The pod's service-account token, read again at every login (the kubelet rotates it)."""
    try:
        jwt = path.read_text().strip()
    except OSError as exc:
        raise SinkPermissionError(
            f"cannot read the service-account token {path}: {exc.strerror or type(exc).__name__}"
        ) from exc
    if not jwt:
        raise SinkPermissionError(f"the service-account token {path} is empty")
    return jwt
