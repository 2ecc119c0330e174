"""The rotator's one exception tree.

Errors from dependencies (httpx, the file system, sink SDKs) are translated at the boundary into
these, ``raise X(...) from exc``, so callers catch one family. No message ever carries a secret,
a raw response body or a header: only the API envelope's own message, a status, a path or a name.

::

    RotatorError
    ├── ConfigError                 bad settings or usage (exit 2); .problems lists each one
    ├── ApiError                    the ProjectManager API failed; .status (HTTP or None)
    │   ├── ApiAuthError            401/403: the credential is invalid, expired or revoked
    │   ├── ApiNotFoundError        404: no such key (maybe already revoked)
    │   ├── ApiRequestError         another 4xx: the request was refused (validation, ...)
    │   ├── ApiRateLimitedError     429 after every retry
    │   ├── ApiServerError          5xx after every retry
    │   ├── ApiTransportError       connect error or timeout after every retry;
    │   │                           .outcome_unknown: the request may have been applied
    │   └── ApiProtocolError        a body that is not the documented envelope, or a 2xx
    │                               whose envelope says it failed
    ├── SinkError                   a sink failed; .state_unknown: whether it might hold the write
    │   ├── SinkUnavailableError    unreachable or timed out: its state is unknown
    │   ├── SinkConflictError       a compare-and-set write lost to another writer
    │   ├── SinkPermissionError     the backend refused the sink's identity (RBAC, policy, IAM)
    │   ├── SinkMetadataError       the stored metadata cannot be read or trusted
    │   ├── SinkNameError           a credential's name cannot be stored (collision, reserved)
    │   └── HistoryUnsupportedError the sink keeps no rotation history (an exec program
    │                               without the history verbs)
    └── LockError                   the workspace's pass lock
        ├── LockHeldError           another pass holds it
        ├── LockLostError           a held lock was lost mid-pass (not renewed, taken over)
        └── LockUnavailableError    it could not be taken at all (I/O, the API refused)
"""

from __future__ import annotations


class RotatorError(Exception):
    """Root of every error the rotator raises on purpose."""


class ConfigError(RotatorError):
    """Settings or usage are wrong; each of ``problems`` names a variable and what is wrong."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class ApiError(RotatorError):
    """The ProjectManager API did not do what was asked."""

    def __init__(self, message: str, *, status: int | None = None, endpoint: str = "") -> None:
        self.message = message
        self.status = status
        self.endpoint = endpoint
        prefix = f"{endpoint}: " if endpoint else ""
        suffix = f" (HTTP {status})" if status is not None else ""
        super().__init__(f"{prefix}{message}{suffix}")


class ApiAuthError(ApiError):
    """The credential was refused (401/403): invalid, expired or revoked."""


class ApiNotFoundError(ApiError):
    """The API answered 404: the key does not exist (or no longer does)."""


class ApiRequestError(ApiError):
    """The API refused the request (a 4xx other than 401, 403, 404 and 429)."""


class ApiRateLimitedError(ApiError):
    """The API kept answering 429 after every retry."""


class ApiServerError(ApiError):
    """The API kept answering 5xx after every retry."""


class ApiTransportError(ApiError):
    """No answer: connection refused or reset, or a timeout, after every retry.

    ``outcome_unknown`` is true when the request may have reached the server and been applied
    (a timeout or a dropped connection after sending), false when it surely was not sent.
    """

    def __init__(self, message: str, *, endpoint: str = "", outcome_unknown: bool = True) -> None:
        super().__init__(message, endpoint=endpoint)
        self.outcome_unknown = outcome_unknown


class ApiProtocolError(ApiError):
    """The answer is not the documented envelope, or a 2xx envelope reports an error."""


class SinkError(RotatorError):
    """A sink could not do what was asked.

    ``state_unknown`` is true when the sink may or may not hold what was written (a timeout):
    the engine must then do nothing irreversible and let the next pass read it back.
    """

    state_unknown: bool = False


class SinkUnavailableError(SinkError):
    """The sink could not be reached or timed out; whether a write landed is unknown."""

    state_unknown = True


class SinkConflictError(SinkError):
    """A compare-and-set write lost: someone else changed the stored value first."""


class SinkMetadataError(SinkError):
    """The sink's metadata for a credential cannot be read or trusted; take no action on it."""


class SinkNameError(SinkError):
    """A credential's name cannot be stored: it is reserved or collides with another's."""


class SinkPermissionError(SinkError):
    """The backend refused the sink's identity (RBAC, a Vault policy, IAM); nothing changed."""


class HistoryUnsupportedError(SinkError):
    """The sink has no place for the rotation history (an exec program without the history
    verbs): the history is unavailable there, which changes nothing else."""


class LockError(RotatorError):
    """The pass lock of a workspace could not be taken or kept."""


class LockHeldError(LockError):
    """Another pass holds the lock of this workspace."""


class LockLostError(LockError):
    """A lock this pass held is no longer its own (a renewal failed, another holder took it)."""


class LockUnavailableError(LockError):
    """The lock could not be taken at all: its file or its API could not be used."""
