"""The Vault sink: each credential is one secret of a KV version 2 engine (HashiCorp Vault or
OpenBao), the key in one field of its data, the metadata in its ``custom_metadata``.

What it writes where. The secret's path inside the mount comes from a template with
``{workspace}`` and ``{credential}`` (default ``key-rotator/{workspace}/{credential}``); each
value put in keeps ``A-Za-z0-9._-`` and turns every other character into ``_``, so a name can
never add a path segment or climb out with ``..`` (two names that map to one path are reported
for both by :meth:`VaultSink.check_names`). The key is the data field ``field`` (default
``api_key``); any other data fields someone put beside it are kept on every write. The
:class:`~rotator.models.SinkRecord` lives in the secret's ``custom_metadata`` as strings under keys
prefixed ``key-rotator-`` (the credential's own name, its workspace and a write id included);
custom metadata keys without that prefix are left as they are. The rotation history is a
secret of its own one segment below, ``<path>/history``, whose data is the history document (the
policy's ``key-rotator/*`` covers it; listing never reads it as a credential). Each delivery
is a new KV version, so the previous key stays readable as the version before (the engine's
``max_versions``, 10 by default, keeps it); nothing here deletes or destroys a version.

Versions and check-and-set. The version token is ``<data version>-<digest>``, the digest covering
the custom metadata (with its write id, new at every metadata write), OpenBao's metadata version,
the current version's deletion state and the metadata's creation time: every write of the data or
of the metadata moves it on, and so does a person deleting a version or the whole secret. A write
first reads the metadata and refuses (``SinkConflictError``, nothing changed) when the token is
not the expected one; then

- a data write sends ``options.cas`` = the data version it checked (0 to create): atomic in every
  KV v2 engine;
- a metadata write sends ``metadata_cas`` = the metadata version it checked when the engine has
  metadata versions (OpenBao does: atomic there); HashiCorp Vault's KV v2 has no check-and-set on
  metadata, so there the check is only as good as the read just before;

and each write reads the metadata again right after, to see that the other half did not move in
between (a data write: the custom metadata is still the one checked; a metadata write: the data
version is still the one checked, and the custom metadata is ours). When it did, the write landed
beside another writer's, and ``SinkUnavailableError`` (state unknown) tells the caller to read
again. The residual race: two writers with one token, each changing a different half, are caught
by at least one of the two re-reads (whichever re-reads last sees the other's write); on HashiCorp
Vault two metadata writers can both miss each other, the later one's record winning. Every pass
holds its workspace's lock, so this is a second line of defence, not the first.

Auth (:mod:`rotator.sinks.vault_auth`): ``token`` from a provider (a file is read again each
pass and after a refusal), or an ``approle`` or ``kubernetes`` login, repeated shortly before its
TTL runs out; a request refused with 401/403 is sent once more with a fresh token (a token revoked
or expired mid-pass). :meth:`close` revokes a token this sink logged in for. ``namespace`` is sent
as ``X-Vault-Namespace`` on every request (logins included); ``cacert`` is a CA bundle for Vault's
certificate; plain http is refused unless the host is loopback.

Errors: no answer (refused, reset, timed out), 5xx or 429 -> ``SinkUnavailableError``; 401/403 ->
``SinkPermissionError``; a check-and-set mismatch -> ``SinkConflictError``; stored metadata that
cannot be trusted -> ``SinkMetadataError``; a name that cannot be stored -> ``SinkNameError``.
Messages name the path and Vault's own error text, with any token or secret blanked; no token or
secret is in a message, a ``repr`` or the metadata.

The client is httpx, which the project already depends on, rather than hvac: this sink makes
seven kinds of call (data read and write, metadata read, write and list, login, revoke-self),
small enough to write against the documented HTTP API; httpx is typed (mypy strict needs no
ignores), gives one place to map timeouts and connection errors, and needs no second HTTP stack
(hvac brings requests). So the ``vault`` extra installs nothing; it exists so that
``pip install 'key-rotator[vault]'`` works like every other sink's.

This module knows nothing of settings, the engine, the API, or other sinks.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import secrets
import ssl
import string
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import httpx

from rotator.errors import (
    ConfigError,
    SinkConflictError,
    SinkError,
    SinkMetadataError,
    SinkNameError,
    SinkPermissionError,
    SinkUnavailableError,
)
from rotator.models import Secret, SinkRecord, is_loopback_host
from rotator.settings.sinks import VaultSinkSettings
from rotator.sinks.base import (
    RECORD_FIELDS,
    BaseSink,
    SinkContext,
    SinkState,
    format_time,
    history_from_document,
    history_to_document,
    name_problems,
    record_from_fields,
)
from rotator.sinks.vault_auth import DEFAULT_JWT_PATH, AuthMethod, Login, make_auth

DEFAULT_PATH_TEMPLATE: Final = "key-rotator/{workspace}/{credential}"
DEFAULT_FIELD: Final = "api_key"
#: The prefix of every custom_metadata key this sink owns.
METADATA_PREFIX: Final = "key-rotator-"
#: The rotation history of a credential at path P is the secret P/history (its data the history
#: document): beside the record, never in its custom_metadata (64 keys of 512 bytes at most).
HISTORY_SEGMENT: Final = "history"

_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_PLACEHOLDERS: Final = frozenset({"workspace", "credential"})
# Vault refuses a custom_metadata value over 512 bytes; a key name is the credential plus the
# rotator's "@YYYY-MM-DDTHH:MM:SSZ" suffix, which must fit too.
_MAX_VALUE_BYTES: Final = 512
_MAX_CREDENTIAL_BYTES: Final = _MAX_VALUE_BYTES - len("@2026-11-27T03:00:00Z")
# Values shorter than this are not blanked from error text (no real token or secret is).
_MIN_HIDDEN_LENGTH: Final = 6
# Vault's error text is short; anything longer is not worth a log line.
_MAX_ERROR_TEXT: Final = 200

# custom_metadata keys: the record's fields, then the sink's own bookkeeping.
_KEY_CREDENTIAL: Final = METADATA_PREFIX + "credential"
_KEY_WORKSPACE: Final = METADATA_PREFIX + "workspace"
_KEY_WRITE_ID: Final = METADATA_PREFIX + "write-id"
_RECORD_FIELDS: Final = RECORD_FIELDS


def metadata_key(field_name: str) -> str:
    """The custom_metadata key of a SinkRecord field: ``key_id`` -> ``key-rotator-key-id``."""
    return METADATA_PREFIX + field_name.replace("_", "-")


def path_segment(value: str) -> str:
    """``value`` made into path text that adds no segment: unsafe characters become ``_``."""
    return _UNSAFE_CHARS.sub("_", value)


class VaultSink(BaseSink):
    """A :class:`~rotator.sinks.base.Sink` writing to a KV version 2 engine over its HTTP API."""

    can_read_secret = True

    kind = "vault"

    def __init__(
        self,
        addr: str,
        *,
        mount: str = "secret",
        path_template: str = DEFAULT_PATH_TEMPLATE,
        field: str = DEFAULT_FIELD,
        workspace: str = "default",
        auth: AuthMethod = "token",
        token_provider: Callable[[], Secret] | None = None,
        role_id: str | None = None,
        secret_id: Secret | None = None,
        role: str | None = None,
        auth_mount: str | None = None,
        jwt_path: Path = DEFAULT_JWT_PATH,
        namespace: str | None = None,
        cacert: Path | None = None,
        timeout_seconds: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``transport`` replaces the network (``httpx.MockTransport`` in narrow unit tests);
        ``clock`` is monotonic seconds, for a login token's TTL."""
        problems: list[str] = []
        self._addr = _checked_addr(addr, problems)
        self._mount = _checked_mount(mount, problems)
        self._template = _checked_template(path_template, workspace, problems)
        if not field:
            problems.append("ROTATOR_SINK_VAULT_FIELD: must not be empty")
        self._field = field
        self._workspace = workspace
        self._namespace = namespace.strip("/") if namespace else None
        self._auth_name = auth
        self._auth = make_auth(
            auth,
            token_provider=token_provider,
            role_id=role_id,
            secret_id=secret_id,
            role=role,
            auth_mount=auth_mount,
            jwt_path=jwt_path,
            clock=clock,
            problems=problems,
        )
        verify = _tls_context(cacert, problems)
        if problems:
            raise ConfigError(problems)
        headers = {"X-Vault-Request": "true"}
        if self._namespace:
            headers["X-Vault-Namespace"] = self._namespace
        self._http = httpx.Client(
            base_url=self._addr + "/v1/",
            headers=headers,
            timeout=httpx.Timeout(timeout_seconds),
            verify=verify,
            transport=transport,
            # Proxies from the environment, as Vault's own CLI honours them; never for loopback.
            trust_env=not is_loopback_host(httpx.URL(self._addr).host),
            follow_redirects=False,
        )
        self._auth.bind(self._send_login)

    def __repr__(self) -> str:
        return (
            f"VaultSink(addr={self._addr!r}, mount={self._mount!r}, "
            f"path={self._template.shown!r}, auth={self._auth_name!r}"
            + (f", namespace={self._namespace!r})" if self._namespace else ")")
        )

    # -- the Sink protocol -------------------------------------------------------------------

    def describe(self) -> str:
        where = f"vault:{self._addr}/v1/{self._mount}/data/{self._template.shown}"
        return where + (f" (namespace {self._namespace})" if self._namespace else "")

    def place_of(self, credential: str) -> str:
        if self._template.problem(credential) is not None:
            return self.describe()
        return f"vault:{self._mount}/{self._template.path(credential)}"

    def check_names(self, credentials: Collection[str]) -> Mapping[str, str]:
        return name_problems(
            credentials, stored_name=self._template.path, problem=self._template.problem,
            what="Vault path",
        )  # fmt: skip

    def list_credentials(self) -> Sequence[str]:
        found: set[str] = set()
        fixed = "{credential}" not in self._template.shown
        leaves = [self._template.shown] if fixed else self._walk(
            self._template.prefix, self._template.depth
        )  # fmt: skip
        for leaf in leaves:
            stored = self._get_metadata(leaf)
            if stored is None:
                continue  # deleted since it was listed
            named = stored.custom.get(_KEY_CREDENTIAL)
            # Only a record of this workspace at the very path of the credential it names is
            # one of ours: not a person's secret beside them, not a record copied elsewhere.
            if (
                named is not None
                and stored.custom.get(_KEY_WORKSPACE, self._workspace) == self._workspace
                and self._template.problem(named) is None
                and self._template.path(named) == leaf
            ):
                found.add(named)
        return sorted(found)

    def read(self, credential: str) -> SinkState:
        path = self._path(credential)
        stored = self._get_metadata(path)
        if stored is None:
            return SinkState(record=None, secret_sha256=None, version=None)
        record = _parse_record(stored.custom, self._shown(path), credential, self._workspace)
        value = self._stored_value(path, stored) if stored.live else None
        digest = None if value is None else hashlib.sha256(value.encode()).hexdigest()
        return SinkState(record=record, secret_sha256=digest, version=stored.token)

    def read_secret(self, credential: str) -> Secret:
        path = self._path(credential)
        stored = self._get_metadata(path)
        value = self._stored_value(path, stored) if stored is not None and stored.live else None
        if value is None:
            raise SinkError(f"{self._shown(path, 'data')} holds no secret")
        return Secret(value)

    def _stored_value(self, path: str, stored: Any) -> str | None:
        data = self._get_data(path, stored.current_version)
        value = None if data is None else data.get(self._field)
        if value is not None and not isinstance(value, str):
            raise SinkMetadataError(
                f"{self._shown(path, 'data')}: field {self._field!r} is not a string"
            )
        return value

    def write_record(
        self, credential: str, record: SinkRecord, *, expected_version: str | None
    ) -> str | None:
        path = self._path(credential)
        before = self._checked(path, credential, expected_version)
        kept = {} if before is None else _foreign(before.custom)
        custom = kept | _record_to_custom(record, credential, self._workspace)
        body: dict[str, Any] = {"custom_metadata": custom}
        if before is None:
            # OpenBao: metadata_cas 0 creates only if absent; Vault ignores the parameter.
            body["metadata_cas"] = 0
        elif before.metadata_version is not None:
            body["metadata_cas"] = before.metadata_version
        self._write(path, "metadata", body)
        after = self._reread(path, credential)
        data_version = 0 if before is None else before.current_version
        if after.current_version != data_version or after.custom != custom:
            raise SinkUnavailableError(
                f"{self._shown(path, 'metadata')}: wrote {credential!r}'s metadata while another "
                "writer changed it; read it again"
            )
        return after.token

    def write_secret(
        self, credential: str, secret: Secret, *, expected_version: str | None
    ) -> str | None:
        path = self._path(credential)
        before = self._checked(path, credential, expected_version)
        data: dict[str, Any] = {}
        if before is not None and before.live:
            data = dict(self._get_data(path, before.current_version) or {})
        data[self._field] = secret.reveal()
        cas = 0 if before is None else before.current_version
        written = self._write(path, "data", {"options": {"cas": cas}, "data": data}, secret)
        after = self._reread(path, credential)
        new_version = _int(_data_of(written).get("version"), cas + 1)
        custom_before = {} if before is None else before.custom
        if after.current_version != new_version or after.custom != custom_before:
            raise SinkUnavailableError(
                f"{self._shown(path, 'data')}: wrote {credential!r}'s secret while another "
                "writer changed it; read it again"
            )
        return after.token

    def read_history(self, credential: str) -> list[dict[str, Any]]:
        path = self._history_path(credential)
        response = self._call("GET", f"{self._mount}/data/{path}")
        if response.status_code == 404:
            return []
        shown = self._shown(path, "data")
        self._raise_for(response, shown)
        data = _data_of(_json(response, shown)).get("data")
        if data is None:
            return []  # its current version was deleted: no history any more
        return history_from_document(
            data, where=shown, credential=credential, workspace=self._workspace
        )

    def write_history(self, credential: str, entries: Sequence[Mapping[str, Any]]) -> None:
        """A new version of the history's own secret (no check-and-set: only a pass holding the
        workspace's lock writes it, and nothing reads its version)."""
        path = self._history_path(credential)
        document = history_to_document(entries, credential=credential, workspace=self._workspace)
        self._write(path, "data", {"data": document})

    def prepare(self) -> None:
        """Pick up a token file rewritten since the last pass (auth ``token``)."""
        self._auth.refresh_provided()

    def close(self) -> None:
        if self._http.is_closed:
            return
        token = self._auth.logged_in_token()
        if token is not None:
            # A login token would otherwise outlive the pass until its TTL; best effort only.
            with contextlib.suppress(httpx.HTTPError):
                self._http.post(
                    "auth/token/revoke-self",
                    headers={"X-Vault-Token": token.reveal()},
                    timeout=2.0,
                )
        self._http.close()

    # -- paths -------------------------------------------------------------------------------

    def _path(self, credential: str) -> str:
        problem = self._template.problem(credential)
        if problem is not None:
            raise SinkNameError(f"credential {credential!r} cannot be stored: {problem}")
        return self._template.path(credential)

    def _history_path(self, credential: str) -> str:
        """The history's own secret, one segment below the credential's: no credential's path
        can be it (a credential never adds a segment), and listing never goes that deep."""
        return f"{self._path(credential)}/{HISTORY_SEGMENT}"

    def _shown(self, path: str, kind: str = "metadata") -> str:
        return f"{self._mount}/{kind}/{path}"

    def _walk(self, prefix: str, depth: int) -> list[str]:
        """The paths ``depth`` segments below ``prefix`` (a folder path ending in ``/``)."""
        response = self._call("LIST", f"{self._mount}/metadata/{prefix}")
        if response.status_code == 404:
            return []
        self._raise_for(response, self._shown(prefix))
        keys = _data_of(_json(response, self._shown(prefix))).get("keys") or []
        leaves: list[str] = []
        for key in keys:
            if not isinstance(key, str) or not key.strip("/"):
                continue
            if depth == 1 and not key.endswith("/"):
                leaves.append(prefix + key)
            elif depth > 1 and key.endswith("/"):
                leaves.extend(self._walk(prefix + key, depth - 1))
        return leaves

    # -- reads -------------------------------------------------------------------------------

    def _get_metadata(self, path: str) -> _Stored | None:
        shown = self._shown(path)
        response = self._call("GET", f"{self._mount}/metadata/{path}")
        if response.status_code == 404:
            return None
        self._raise_for(response, shown)
        return _Stored.parse(_data_of(_json(response, shown)), shown)

    def _get_data(self, path: str, version: int) -> Mapping[str, Any] | None:
        """The data of one version, or None when it is gone (deleted or destroyed since)."""
        shown = self._shown(path, "data")
        response = self._call("GET", f"{self._mount}/data/{path}", params={"version": str(version)})
        if response.status_code == 404:
            return None
        self._raise_for(response, shown)
        data = _data_of(_json(response, shown)).get("data")
        if data is None:
            return None
        if not isinstance(data, dict):
            raise SinkMetadataError(f"{shown}: the data is not an object")
        return data

    def _checked(self, path: str, credential: str, expected: str | None) -> _Stored | None:
        """What is stored now, provided it is what the caller last read; else a conflict."""
        stored = self._get_metadata(path)
        current = None if stored is None else stored.token
        if current != expected:
            raise SinkConflictError(
                f"{self._shown(path)}: {credential!r} changed since it was read"
            )
        return stored

    def _reread(self, path: str, credential: str) -> _Stored:
        stored = self._get_metadata(path)
        if stored is None:
            raise SinkUnavailableError(
                f"{self._shown(path)}: {credential!r} vanished right after it was written"
            )
        return stored

    # -- writes ------------------------------------------------------------------------------

    def _write(
        self, path: str, kind: str, body: Mapping[str, Any], secret: Secret | None = None
    ) -> Any:
        shown = self._shown(path, kind)
        response = self._call("POST", f"{self._mount}/{kind}/{path}", json=body, secret=secret)
        self._raise_for(response, shown, secret)
        if response.status_code == 204 or not response.content:
            return {}
        return _json(response, shown)

    # -- HTTP --------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        url: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        secret: Secret | None = None,
    ) -> httpx.Response:
        """One request with the current token; after a 403, once more with a fresh token."""
        token = self._auth.token()
        response = self._send(method, url, token, json=json, params=params, secret=secret)
        if response.status_code in (401, 403) and self._auth.renew(token):
            fresh = self._auth.token()
            response = self._send(method, url, fresh, json=json, params=params, secret=secret)
            if response.status_code in (401, 403):
                # A token refused right after it was fetched is refused by policy: asking for
                # yet another one at each request would only log in again and again.
                self._auth.refused_when_fresh(fresh)
        return response

    def _send(
        self,
        method: str,
        url: str,
        token: Secret | None,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        secret: Secret | None = None,
    ) -> httpx.Response:
        headers = {} if token is None else {"X-Vault-Token": token.reveal()}
        try:
            return self._http.request(method, url, json=json, params=params, headers=headers)
        except httpx.HTTPError as exc:
            where = f"Vault at {self._addr}: {method} {url}"
            refused_tls = _tls_failure(exc)
            if refused_tls is not None:
                # Nothing was sent: a certificate this sink does not trust is not transient.
                raise SinkError(f"{where}: TLS failed ({refused_tls})") from exc
            what = "timed out" if isinstance(exc, httpx.TimeoutException) else "no answer"
            raise SinkUnavailableError(f"{where}: {what} ({type(exc).__name__})") from exc

    def _send_login(self, mount: str, body: Mapping[str, str], hidden: Sequence[str]) -> Login:
        url = f"auth/{mount}/login"
        response = self._send("POST", url, None, json=body)
        if response.status_code in (400, 401, 403):
            raise SinkPermissionError(
                f"Vault at {self._addr}: login at {url} was refused "
                f"(HTTP {response.status_code}: {_error_text(response, hidden)})"
            )
        self._raise_for(response, url, hidden=hidden)
        auth = _json(response, url).get("auth")
        token = auth.get("client_token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            raise SinkError(f"Vault at {self._addr}: login at {url} answered without a token")
        lease = _int(auth.get("lease_duration") if isinstance(auth, dict) else None, 0)
        return Login(token=Secret(token), lease_seconds=lease)

    def _raise_for(
        self,
        response: httpx.Response,
        shown: str,
        secret: Secret | None = None,
        *,
        hidden: Sequence[str] = (),
    ) -> None:
        status = response.status_code
        if status < 300:
            return
        blank = [*hidden, *self._auth.hidden()]
        if secret is not None:
            blank.append(secret.reveal())
        text = _error_text(response, blank)
        message = f"Vault at {self._addr}: {shown}: HTTP {status}: {text}"
        if status == 400 and "check-and-set" in text:
            raise SinkConflictError(message)
        if status in (401, 403):
            raise SinkPermissionError(message)
        if status in {412, 429} or status >= 500:
            # Rate limited, a standby not yet caught up, sealed, or failed mid-way: the outcome
            # of a write is not known.
            raise SinkUnavailableError(message)
        raise SinkError(message)


# -- the stored state ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Stored:
    """A secret's metadata as one GET of ``<mount>/metadata/<path>`` answered it."""

    current_version: int
    #: OpenBao's metadata version (moved on by each metadata write); None on HashiCorp Vault.
    metadata_version: int | None
    #: Whether the current version still has data (neither deleted nor destroyed).
    live: bool
    custom: Mapping[str, str]
    token: str

    @classmethod
    def parse(cls, data: Mapping[str, Any], shown: str) -> _Stored:
        current = _int(data.get("current_version"), 0)
        raw_metadata_version = data.get("current_metadata_version")
        metadata_version = raw_metadata_version if isinstance(raw_metadata_version, int) else None
        custom_raw = data.get("custom_metadata") or {}
        if not isinstance(custom_raw, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in custom_raw.items()
        ):
            raise SinkMetadataError(f"{shown}: custom_metadata is not a map of strings")
        versions = data.get("versions")
        entry = versions.get(str(current)) if isinstance(versions, dict) else None
        deletion_time = entry.get("deletion_time", "") if isinstance(entry, dict) else ""
        destroyed = bool(entry.get("destroyed")) if isinstance(entry, dict) else False
        live = current > 0 and isinstance(entry, dict) and not deletion_time and not destroyed
        digest = hashlib.sha256(
            json.dumps(
                {
                    "created": data.get("created_time"),
                    "custom": custom_raw,
                    "metadata_version": metadata_version,
                    "deletion_time": deletion_time,
                    "destroyed": destroyed,
                },
                sort_keys=True,
            ).encode()
        ).hexdigest()
        return cls(
            current_version=current,
            metadata_version=metadata_version,
            live=live,
            custom=dict(custom_raw),
            token=f"{current}-{digest[:24]}",
        )


def _foreign(custom: Mapping[str, str]) -> dict[str, str]:
    """The custom metadata someone else put on the secret, kept on every write."""
    return {k: v for k, v in custom.items() if not k.startswith(METADATA_PREFIX)}


def _record_to_custom(record: SinkRecord, credential: str, workspace: str) -> dict[str, str]:
    custom = {
        _KEY_CREDENTIAL: credential,
        _KEY_WORKSPACE: workspace,
        # New at every write, so the version token moves on even where metadata has no version.
        _KEY_WRITE_ID: secrets.token_hex(8),
    }
    for field_name in _RECORD_FIELDS:
        value = getattr(record, field_name)
        if value is None:
            continue
        custom[metadata_key(field_name)] = (
            format_time(value) if isinstance(value, datetime) else str(value)
        )
    return custom


def _parse_record(
    custom: Mapping[str, str], shown: str, credential: str, workspace: str
) -> SinkRecord | None:
    """The record in ``custom``, or None when it holds none; SinkMetadataError naming the key
    (never its value) when it cannot be trusted."""
    named = custom.get(_KEY_CREDENTIAL)
    if named is None:
        if any(metadata_key(name) in custom for name in _RECORD_FIELDS):
            raise SinkMetadataError(f"{shown}: {_KEY_CREDENTIAL} is missing")
        return None
    if named != credential:
        raise SinkMetadataError(f"{shown} is the record of another credential, not {credential!r}")
    owner = custom.get(_KEY_WORKSPACE)
    if owner is not None and owner != workspace:
        raise SinkMetadataError(f"{shown} is the record of workspace {owner!r}, not {workspace!r}")
    return record_from_fields(
        {name: custom.get(metadata_key(name)) for name in _RECORD_FIELDS},
        where=shown,
        key_of=metadata_key,
        credential=credential,
    )


# -- the path template -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Template:
    """The path template with the workspace put in: credential -> path, and where to list."""

    #: The template with ``{workspace}`` replaced, ``{credential}`` left in.
    shown: str
    #: The folder to LIST (ends in ``/``, or is empty for the mount's root).
    prefix: str
    #: How many segments below ``prefix`` a credential's path lies.
    depth: int

    def path(self, credential: str) -> str:
        return self.shown.replace("{credential}", path_segment(credential))

    def problem(self, credential: str) -> str | None:
        """Why ``credential`` can never be stored under this template, or None."""
        if not credential:
            return "an empty name cannot be stored"
        if len(credential.encode()) > _MAX_CREDENTIAL_BYTES:
            return f"it is longer than {_MAX_CREDENTIAL_BYTES} bytes (Vault's metadata limit)"
        for segment in self.path(credential).split("/"):
            if segment in ("", ".", ".."):
                return f"its Vault path {self.path(credential)!r} has a segment {segment!r}"
        return None


def _checked_template(template: str, workspace: str, problems: list[str]) -> _Template:
    variable = "ROTATOR_SINK_VAULT_PATH"
    try:
        for _text, name, spec, conversion in string.Formatter().parse(template):
            if name is None:
                continue
            if name not in _PLACEHOLDERS or spec or conversion:
                problems.append(
                    f"{variable}: only {{workspace}} and {{credential}} may be used, got {{{name}}}"
                )
    except ValueError as exc:
        problems.append(f"{variable}: not a valid template ({exc})")
    # Without {credential} the path is one fixed place: every credential would share it, so
    # the settings allow it only for a route's target of one credential (check_names refuses
    # two credentials at one path all the same).
    shown = template.replace("{workspace}", path_segment(workspace))
    segments = shown.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        problems.append(f"{variable}: no empty, '.' or '..' segment, nor a leading or trailing /")
    first = next((i for i, s in enumerate(segments) if "{credential}" in s), len(segments))
    prefix = "".join(segment + "/" for segment in segments[:first])
    return _Template(shown=shown, prefix=prefix, depth=max(len(segments) - first, 1))


def _checked_addr(addr: str, problems: list[str]) -> str:
    variable = "ROTATOR_SINK_VAULT_ADDR"
    try:
        url = httpx.URL(addr)
    except httpx.InvalidURL:
        problems.append(f"{variable}: not a URL")
        return addr
    if url.scheme not in ("http", "https") or not url.host:
        problems.append(f"{variable}: must be an http(s) URL with a host")
    elif url.scheme == "http" and not is_loopback_host(url.host):
        problems.append(f"{variable}: must use https unless the host is loopback")
    if url.userinfo or url.query or url.fragment:
        problems.append(f"{variable}: no user, password, query or fragment in the address")
    return str(url).rstrip("/")


def _checked_mount(mount: str, problems: list[str]) -> str:
    stripped = mount.strip("/")
    if not stripped or any(s in ("", ".", "..") for s in stripped.split("/")):
        problems.append("ROTATOR_SINK_VAULT_MOUNT: must be a mount path such as 'secret'")
    elif _UNSAFE_CHARS.search(stripped.replace("/", "")):
        problems.append("ROTATOR_SINK_VAULT_MOUNT: only A-Za-z0-9._- and / may be used")
    return stripped


def _tls_context(cacert: Path | None, problems: list[str]) -> ssl.SSLContext | bool:
    if cacert is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(cacert))
    except (OSError, ssl.SSLError) as exc:
        problems.append(f"ROTATOR_SINK_VAULT_CACERT: cannot load {cacert}: {exc}")
        return True


# -- small helpers ---------------------------------------------------------------------------


def _json(response: httpx.Response, shown: str) -> dict[str, Any]:
    try:
        document = response.json()
    except ValueError as exc:
        raise SinkError(f"{shown}: Vault's answer is not JSON") from exc
    if not isinstance(document, dict):
        raise SinkError(f"{shown}: Vault's answer is not a JSON object")
    return document


def _data_of(document: Mapping[str, Any]) -> Mapping[str, Any]:
    data = document.get("data")
    return data if isinstance(data, dict) else {}


def _tls_failure(exc: BaseException) -> str | None:
    """The reason of the TLS error behind ``exc``, if a TLS handshake is what failed."""
    seen: BaseException | None = exc
    for _ in range(10):  # a chain is short; a cycle in one must not hang here
        if seen is None:
            break
        if isinstance(seen, ssl.SSLError):
            return str(getattr(seen, "reason", None) or type(seen).__name__)
        seen = seen.__cause__ or seen.__context__
    return None


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _error_text(response: httpx.Response, hidden: Sequence[str]) -> str:
    """Vault's own error text (its ``errors`` list), short, with every hidden value blanked."""
    try:
        errors = response.json().get("errors")
    except (ValueError, AttributeError):
        errors = None
    if isinstance(errors, list) and errors:
        text = "; ".join(str(e) for e in errors)
    else:
        text = response.reason_phrase or "no error text"
    for value in hidden:
        # Tokens and secrets are long; blanking a short value would only garble the text.
        if len(value) >= _MIN_HIDDEN_LENGTH:
            text = text.replace(value, "**********")
    text = " ".join(text.split())
    return text if len(text) <= _MAX_ERROR_TEXT else text[: _MAX_ERROR_TEXT - 3] + "..."


def from_settings(settings: VaultSinkSettings, context: SinkContext) -> VaultSink:
    """The sink of one workspace, from its settings (the registry's entry point)."""
    token = settings.token
    return VaultSink(
        settings.addr,
        mount=settings.mount,
        path_template=settings.path,
        field=settings.field,
        workspace=context.workspace,
        auth=settings.auth,
        token_provider=(lambda: Secret(token.get_secret_value())) if token else None,
        role_id=settings.role_id,
        secret_id=Secret(settings.secret_id.get_secret_value()) if settings.secret_id else None,
        role=settings.role,
        auth_mount=settings.auth_mount,
        namespace=settings.namespace,
        cacert=settings.cacert,
        timeout_seconds=context.timeout_seconds,
    )
