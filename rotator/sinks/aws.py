"""The AWS Secrets Manager sink: one secret per credential, its metadata in the secret's tags.

What it writes where, for a credential C of workspace W (secret name from the template, with
``{workspace}`` and ``{credential}`` filled in and every character AWS does not allow in a name,
outside ``A-Za-z0-9/_+=.@-``, replaced by ``_``):

- the value: the secret's ``SecretString`` is the key itself, or with ``json_key`` one field of
  a JSON object whose other fields are kept;
- the stages: a new value is put as a version staged ``AWSPENDING`` whose ClientRequestToken
  (its VersionId) is derived from the pending key's id and the value, then ``AWSCURRENT`` is
  moved onto it with ``UpdateSecretVersionStage``, so the value before stays readable as
  ``AWSPREVIOUS``. Putting the same value again reuses the same version (the put is idempotent);
- the metadata: the :class:`~rotator.models.SinkRecord` fields and the credential's own name, in
  tags ``key-rotator:<field>`` (``key-rotator:credential``, ``key-rotator:workspace``,
  ``key-rotator:key_id``, ...), never the secret. A field that is None has no tag;
- the rotation history: a secret of its own, ``<name>/history``, its value the history document
  (tags hold 256 characters, 50 of them: too little for 50 entries). A credential whose secret
  name ends in ``/history`` is refused, so none is ever another's history.

A secret the rotator did not tag has no record; one that exists is only tagged and given new
versions, so ops may create the secrets themselves (their own KMS key, resource policy,
replicas).

Tag values allow only ``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]`` and 256 characters: a value made of the
ASCII part of that set is stored as it is (times as ISO 8601 UTC ``2026-11-27T03:00:00Z``);
any other value (and one starting ``b64:``) is stored as ``b64:`` and its UTF-8 in base64.

Compare-and-set. The version token is the ``AWSCURRENT`` VersionId and a digest of the
``key-rotator:`` tags, read by one ``DescribeSecret``. Each write describes the secret again and
refuses (``SinkConflictError``) when the token moved. For the value the check is also atomic at
AWS: ``AWSCURRENT`` is moved with ``RemoveFromVersionId`` = the version read, which AWS refuses
when another writer moved it in between; creating a secret that another writer created fails
the same way. Tags have no such primitive: a tag write racing another writer between the
describe and the ``TagResource`` is not detected. Only one pass of a workspace writes at a time
(the pass lock), so that race needs a person editing the tags in the same second.

Reading takes the value of the described ``AWSCURRENT`` version by its VersionId, so the hash
and the token describe one version (this also avoids a moto 5.2.5 bug where ``GetSecretValue``
without a stage returns the value before an ``UpdateSecretVersionStage``).

AWS credentials come only from the SDK's standard chain (environment, web identity/IRSA,
container and instance roles, the shared config), never from a parameter. The SDK (botocore,
the client library under boto3, which the extra installs) is imported here only, when a sink is
made; one client per sink, which is safe to share between threads. Errors become
:mod:`rotator.errors` ``SinkError``s naming the operation, the secret and AWS's error code,
never a value or a key. This module knows nothing of the engine or of settings.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import string
import threading
import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from rotator.errors import (
    ConfigError,
    SinkConflictError,
    SinkError,
    SinkMetadataError,
    SinkNameError,
    SinkPermissionError,
    SinkUnavailableError,
)
from rotator.models import Secret, SinkRecord
from rotator.settings.sinks import AwsSecretsManagerSinkSettings
from rotator.sinks.base import (
    EMPTY,
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

KIND: Final = "aws-secrets-manager"
DEFAULT_SECRET_ID_TEMPLATE: Final = "key-rotator/{workspace}/{credential}"  # noqa: S105 - a name
TAG_PREFIX: Final = "key-rotator:"
CREDENTIAL_TAG: Final = TAG_PREFIX + "credential"
WORKSPACE_TAG: Final = TAG_PREFIX + "workspace"
#: The rotation history of the credential whose secret is N is the secret N/history, its value
#: the history document, tagged with this (never with the workspace or credential tags).
HISTORY_SUFFIX: Final = "/history"
HISTORY_TAG: Final = TAG_PREFIX + "history-of"

_INSTALL_HINT: Final = (
    "ROTATOR_SINK: the aws-secrets-manager sink needs its extra: "
    "pip install 'key-rotator[aws-secrets-manager]'"
)
_TEMPLATE_VARIABLE: Final = "ROTATOR_SINK_AWS_SECRETS_MANAGER_SECRET_ID"
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9/_+=.@-]")
_MAX_NAME_LENGTH: Final = 512
_PLAIN_TAG_VALUE = re.compile(r"[A-Za-z0-9 _.:/=+@-]*")
_ENCODED_PREFIX: Final = "b64:"
_MAX_TAG_VALUE: Final = 256
# What a key name adds to its credential's name: '@' and a UTC time (README, Key names).
_KEY_NAME_SUFFIX_EXAMPLE: Final = "@2026-11-27T03:00:00Z"
# The VersionIds of the values this sink puts: name-based UUIDs in a namespace of our own.
_TOKEN_NAMESPACE: Final = uuid.UUID("5c1d6f0e-6b52-4d0e-9b6e-6b65792d726f")

_RECORD_FIELDS: Final = RECORD_FIELDS

# AWS error codes: the identity was refused (IAM, a resource or KMS key policy, bad keys) ...
_PERMISSION_CODES: Final = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "DecryptionFailure",
        "EncryptionFailure",
    }
)
# ... or the service is overloaded or failing: what a write did is unknown.
_UNAVAILABLE_CODES: Final = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalServiceError",
        "InternalFailure",
        "ServiceUnavailable",
    }
)


_CLIENT_CREATION = threading.Lock()
_loader: Any = None


def _shared_loader() -> Any:
    """botocore's loader of its service models, shared by every sink (call it locked).

    Loading the models takes most of a client's 0.1 to 0.2 s of creation; they are read-only
    files, so one cache serves every workspace's sink.
    """
    global _loader  # noqa: PLW0603 - a cache of static data, not state
    if _loader is None:
        from botocore.loaders import create_loader  # noqa: PLC0415

        _loader = create_loader()
    return _loader


class _Refused(Exception):  # noqa: N818 - not an error: an answer the caller expects
    """AWS answered with an error code the caller asked to handle itself."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class AwsSecretsManagerSink(BaseSink):
    """A :class:`~rotator.sinks.base.Sink` writing one AWS Secrets Manager secret per credential."""

    can_read_secret = True

    kind = KIND

    def __init__(
        self,
        *,
        region: str | None,
        secret_id_template: str = DEFAULT_SECRET_ID_TEMPLATE,
        workspace: str,
        json_key: str | None = None,
        endpoint_url: str | None = None,
        kms_key_id: str | None = None,
        timeout_seconds: float = 10.0,
        max_attempts: int = 3,
    ) -> None:
        """``region`` None: the SDK's own (``AWS_REGION``, ``AWS_DEFAULT_REGION``, the config).

        ``timeout_seconds`` bounds connecting and each read; ``max_attempts`` counts botocore's
        own retries of throttling, 5xx and connection errors (every write here is safe to
        retry: a put reuses its ClientRequestToken).
        """
        _check_template(secret_id_template)
        try:
            import botocore.session  # noqa: PLC0415 - an optional extra: import it only here
            from botocore.config import Config  # noqa: PLC0415
            from botocore.exceptions import NoRegionError  # noqa: PLC0415
        except ImportError as exc:
            raise ConfigError([_INSTALL_HINT]) from exc
        self._template = secret_id_template
        self._workspace = workspace
        self._json_key = json_key or None
        self._kms_key_id = kms_key_id or None
        self._endpoint_url = endpoint_url or None
        config = Config(
            connect_timeout=timeout_seconds,
            read_timeout=timeout_seconds,
            retries={"mode": "standard", "total_max_attempts": max(1, max_attempts)},
        )
        with _CLIENT_CREATION:
            # A session of its own, made and used once, here: sessions are not thread-safe (the
            # client made from one is). It resolves credentials through the standard chain now.
            session = botocore.session.Session()
            session.register_component("data_loader", _shared_loader())
            try:
                self._client: Any = session.create_client(
                    "secretsmanager",
                    # Every other AWS SDK reads AWS_REGION (EKS, ECS and Lambda set it);
                    # botocore reads only AWS_DEFAULT_REGION and the config.
                    region_name=region or os.environ.get("AWS_REGION") or None,
                    endpoint_url=self._endpoint_url,
                    config=config,
                )
            except NoRegionError as exc:
                raise ConfigError(
                    [
                        "ROTATOR_SINK_AWS_SECRETS_MANAGER_REGION: no region set "
                        "(nor AWS_REGION, AWS_DEFAULT_REGION or a region in the AWS config)"
                    ]
                ) from exc
        self._region: str = self._client.meta.region_name

    def __repr__(self) -> str:
        return (
            f"AwsSecretsManagerSink(region={self._region!r}, "
            f"secret_id_template={self._template!r}, workspace={self._workspace!r}, "
            f"json_key={self._json_key!r}, endpoint_url={self._endpoint_url!r})"
        )

    # -- the Sink protocol -------------------------------------------------------------------

    def describe(self) -> str:
        where = f" at {self._endpoint_url}" if self._endpoint_url else ""
        field = f" field {self._json_key!r}" if self._json_key else ""
        return f"{KIND}:{self._region}:{self._template}{field}{where}"

    def place_of(self, credential: str) -> str:
        return f"{KIND}:{self.secret_name(credential)}"

    def check_names(self, credentials: Collection[str]) -> Mapping[str, str]:
        return name_problems(
            credentials, stored_name=self.secret_name, problem=self._name_problem,
            what="secret name",
        )  # fmt: skip

    def list_credentials(self) -> Sequence[str]:
        workspace_value = _encode_tag_value(self._workspace)
        filters = [
            {"Key": "tag-key", "Values": [WORKSPACE_TAG]},
            {"Key": "tag-value", "Values": [workspace_value]},
        ]
        found: set[str] = set()
        token: str | None = None
        while True:
            params: dict[str, Any] = {"Filters": filters, "MaxResults": 100}
            if token:
                params["NextToken"] = token
            page = self._call("ListSecrets", "", **params)
            for entry in page.get("SecretList", ()):
                credential = self._credential_of(entry, workspace_value)
                if credential is not None:
                    found.add(credential)
            token = page.get("NextToken")
            if not token:
                return sorted(found)

    def read(self, credential: str) -> SinkState:
        name = self._checked_name(credential)
        described = self._describe(name)
        if described is None:
            return EMPTY
        tags = _rotator_tags(described)
        record = self._parse_record(tags, name, credential)
        current = _current_version_id(described)
        digest = None
        if current is not None:
            value = self._value_of(described["ARN"], current, name)
            digest = self._key_sha256(value, name)
        return SinkState(record=record, secret_sha256=digest, version=_version(current, tags))

    def read_secret(self, credential: str) -> Secret:
        name = self._checked_name(credential)
        described = self._describe(name)
        current = None if described is None else _current_version_id(described)
        if described is None or current is None:
            raise SinkError(f"{KIND}: secret {name!r} holds no value")
        value = self._value_of(described["ARN"], current, name)
        if self._json_key is not None:
            field = self._json_object(value, name).get(self._json_key)
            if not isinstance(field, str):
                raise SinkError(f"{KIND}: secret {name!r} holds no {self._json_key!r} field")
            value = field
        return Secret(value)

    def write_record(
        self, credential: str, record: SinkRecord, *, expected_version: str | None
    ) -> str | None:
        name = self._checked_name(credential)
        described = self._describe(name)
        self._check_expected(described, expected_version, name, credential)
        desired = self._record_tags(record, credential, name)
        if described is None:
            self._create(name, credential, tags=desired)
            return _version(None, desired)
        arn = described["ARN"]
        stored = _rotator_tags(described)
        changed = {key: value for key, value in desired.items() if stored.get(key) != value}
        removed = sorted(set(stored) - set(desired))
        # Set before removing: a write cut off between the two leaves the pending fields in
        # place, which the next pass settles by reading the secret back.
        if changed:
            self._call("TagResource", name, SecretId=arn, Tags=_tag_list(changed))
        if removed:
            self._call("UntagResource", name, SecretId=arn, TagKeys=removed)
        return _version(_current_version_id(described), desired)

    def write_secret(
        self, credential: str, secret: Secret, *, expected_version: str | None
    ) -> str | None:
        name = self._checked_name(credential)
        described = self._describe(name)
        self._check_expected(described, expected_version, name, credential)
        if described is None:
            secret_string = self._compose(None, secret, name)
            token = _request_token(name, None, secret_string)
            tags = {WORKSPACE_TAG: _encode_tag_value(self._workspace)}
            self._create(name, credential, tags=tags, secret_string=secret_string, token=token)
            return _version(token, tags)
        arn = described["ARN"]
        tags = _rotator_tags(described)
        current = _current_version_id(described)
        existing = None
        if self._json_key is not None and current is not None:
            existing = self._value_of(arn, current, name)
        secret_string = self._compose(existing, secret, name)
        token = _request_token(name, tags.get(TAG_PREFIX + "pending_key_id"), secret_string)
        if token == current:
            return _version(current, tags)  # this very value is current already
        put = self._call(
            "PutSecretValue",
            name,
            SecretId=arn,
            ClientRequestToken=token,
            SecretString=secret_string,
            VersionStages=["AWSPENDING"],
        )
        # The first version of a secret is made AWSCURRENT by AWS itself.
        if "AWSCURRENT" not in put.get("VersionStages", ()):
            self._make_current(arn, name, credential, token, current)
        return _version(token, tags)

    def read_history(self, credential: str) -> list[dict[str, Any]]:
        name = self._checked_name(credential) + HISTORY_SUFFIX
        try:
            answer = self._call(
                "GetSecretValue", name, tolerate=("ResourceNotFoundException",),
                SecretId=name, VersionStage="AWSCURRENT",
            )  # fmt: skip
        except _Refused:
            return []
        where = f"{KIND}: secret {name!r}"
        try:
            document = json.loads(answer.get("SecretString") or "")
        except json.JSONDecodeError:
            raise SinkMetadataError(f"{where} does not hold a JSON history") from None
        return history_from_document(
            document, where=where, credential=credential, workspace=self._workspace
        )

    def write_history(self, credential: str, entries: Sequence[Mapping[str, Any]]) -> None:
        """A new value of the history's own secret (no compare-and-set: only a pass holding the
        workspace's lock writes it, and nothing reads its version)."""
        name = self._checked_name(credential) + HISTORY_SUFFIX
        document = history_to_document(entries, credential=credential, workspace=self._workspace)
        value = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
        try:
            self._call(
                "PutSecretValue", name, tolerate=("ResourceNotFoundException",),
                SecretId=name, SecretString=value,
            )  # fmt: skip
        except _Refused:
            # Its first write. No workspace or credential tag: it is no credential's secret,
            # and ListSecrets by the workspace tag never finds it.
            params: dict[str, Any] = {
                "Name": name,
                "SecretString": value,
                "Tags": _tag_list({HISTORY_TAG: _encode_tag_value(credential)}),
            }
            if self._kms_key_id is not None:
                params["KmsKeyId"] = self._kms_key_id
            self._call("CreateSecret", name, **params)

    def close(self) -> None:
        self._client.close()

    # -- names -------------------------------------------------------------------------------

    def secret_name(self, credential: str) -> str:
        """The name of ``credential``'s secret (characters AWS refuses become ``_``)."""
        return self._template.format(
            workspace=_safe_name(self._workspace), credential=_safe_name(credential)
        )

    def _name_problem(self, credential: str) -> str | None:
        if not credential:
            return "an empty credential name cannot be stored"
        name = self.secret_name(credential)
        if len(name) + len(HISTORY_SUFFIX) > _MAX_NAME_LENGTH:
            return (
                f"its history's secret name (its own and {HISTORY_SUFFIX!r}) is longer than "
                f"{_MAX_NAME_LENGTH} characters"
            )
        if name.endswith(HISTORY_SUFFIX):
            return f"its secret name {name!r} ends in {HISTORY_SUFFIX!r}, reserved for histories"
        # The record holds the credential's name and its keys' names (the name, '@', a time).
        if len(_encode_tag_value(credential + _KEY_NAME_SUFFIX_EXAMPLE)) > _MAX_TAG_VALUE:
            return f"the name is too long for a tag value ({_MAX_TAG_VALUE} characters)"
        return None

    def _checked_name(self, credential: str) -> str:
        problem = self._name_problem(credential)
        if problem is not None:
            raise SinkNameError(f"credential {credential!r} cannot be stored: {problem}")
        return self.secret_name(credential)

    def _credential_of(self, entry: Mapping[str, Any], workspace_value: str) -> str | None:
        """The credential a listed secret holds, when it is one of this workspace's."""
        tags = _rotator_tags(entry)
        # ListSecrets' tag filters match a key and a value independently, by prefix: recheck.
        if tags.get(WORKSPACE_TAG) != workspace_value or CREDENTIAL_TAG not in tags:
            return None
        try:
            credential = _decode_tag_value(tags[CREDENTIAL_TAG])
        except ValueError:
            return None
        if self._name_problem(credential) is not None:
            return None
        # A tag copied onto another secret does not make it this credential's.
        return credential if self.secret_name(credential) == entry.get("Name") else None

    # -- AWS calls ---------------------------------------------------------------------------

    def _describe(self, name: str) -> dict[str, Any] | None:
        try:
            described = self._call(
                "DescribeSecret", name, tolerate=("ResourceNotFoundException",), SecretId=name
            )
        except _Refused:
            return None
        if described.get("DeletedDate") is not None:
            raise SinkError(
                f"{KIND}: secret {name!r} is scheduled for deletion: restore it "
                "(RestoreSecret) or delete it for good before the rotator can write it"
            )
        return described

    def _value_of(self, arn: str, version_id: str, name: str) -> str:
        answer = self._call("GetSecretValue", name, SecretId=arn, VersionId=version_id)
        value = answer.get("SecretString")
        if not isinstance(value, str):
            raise SinkMetadataError(f"{KIND}: secret {name!r} holds a binary value, not a string")
        return value

    def _create(
        self,
        name: str,
        credential: str,
        *,
        tags: Mapping[str, str],
        secret_string: str | None = None,
        token: str | None = None,
    ) -> None:
        params: dict[str, Any] = {"Name": name, "Tags": _tag_list(tags)}
        if self._kms_key_id is not None:
            params["KmsKeyId"] = self._kms_key_id
        if secret_string is not None:
            params["SecretString"] = secret_string
            params["ClientRequestToken"] = token
        try:
            self._call("CreateSecret", name, tolerate=("ResourceExistsException",), **params)
        except _Refused as exc:
            raise SinkConflictError(
                f"{KIND}: secret {name!r} of {credential!r} was created by another writer"
            ) from exc

    def _make_current(
        self, arn: str, name: str, credential: str, token: str, current: str | None
    ) -> None:
        """Move ``AWSCURRENT`` from ``current`` (the version read) to ``token``, atomically."""
        params: dict[str, Any] = {
            "SecretId": arn,
            "VersionStage": "AWSCURRENT",
            "MoveToVersionId": token,
        }
        if current is not None:
            params["RemoveFromVersionId"] = current
        try:
            self._call(
                "UpdateSecretVersionStage", name, tolerate=("InvalidParameterException",), **params
            )
        except _Refused as exc:
            # AWSCURRENT is no longer on the version read: another writer moved it, or botocore
            # retried this very call after its answer was lost, and the first one had landed.
            now = self._describe(name)
            if now is not None and _current_version_id(now) == token:
                return
            raise SinkConflictError(
                f"{KIND}: secret {name!r} of {credential!r} got another current value meanwhile"
            ) from exc

    def _call(
        self, operation: str, name: str, *, tolerate: Collection[str] = (), **params: Any
    ) -> dict[str, Any]:
        """One API call; botocore errors become SinkErrors, a ``tolerate``d code ``_Refused``."""
        from botocore import exceptions as aws  # noqa: PLC0415 - the SDK is imported lazily

        method = getattr(self._client, _snake_case(operation))
        where = f"{operation} of {name!r}" if name else operation
        try:
            answer: dict[str, Any] = method(**params)
        except aws.ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "unknown"))
            if code in tolerate:
                raise _Refused(code) from exc
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            message = f"{KIND}: {where} failed: {code}"
            # A 403 whose body botocore could not parse (moto answers IAM denials in XML)
            # leaves the status as the code: the status says enough.
            if code in _PERMISSION_CODES or status in (401, 403):
                raise SinkPermissionError(message) from exc
            if code in _UNAVAILABLE_CODES or (isinstance(status, int) and status >= 500):
                raise SinkUnavailableError(message) from exc
            raise SinkError(message) from exc
        except (aws.ConnectionError, aws.HTTPClientError) as exc:
            endpoint = self._client.meta.endpoint_url
            raise SinkUnavailableError(
                f"{KIND}: {where}: no answer from {endpoint} ({type(exc).__name__})"
            ) from exc
        except (aws.NoCredentialsError, aws.PartialCredentialsError) as exc:
            raise SinkPermissionError(
                f"{KIND}: {where}: no usable AWS credentials in the standard chain"
            ) from exc
        except aws.ParamValidationError:
            # Its message quotes parameter values, the secret among them: never chain it.
            raise SinkError(f"{KIND}: {where}: botocore refused the parameters") from None
        except aws.BotoCoreError as exc:
            raise SinkError(f"{KIND}: {where} failed: {type(exc).__name__}") from exc
        return answer

    # -- values, records and versions --------------------------------------------------------

    def _compose(self, existing: str | None, secret: Secret, name: str) -> str:
        """The SecretString holding ``secret``: itself, or the JSON object with its field set."""
        if self._json_key is None:
            return secret.reveal()
        document = {} if existing is None else self._json_object(existing, name)
        document[self._json_key] = secret.reveal()
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"))

    def _key_sha256(self, value: str, name: str) -> str | None:
        if self._json_key is None:
            return hashlib.sha256(value.encode()).hexdigest()
        field = self._json_object(value, name).get(self._json_key)
        if field is None:
            return None
        if not isinstance(field, str):
            raise SinkMetadataError(
                f"{KIND}: secret {name!r}: field {self._json_key!r} is not a string"
            )
        return hashlib.sha256(field.encode()).hexdigest()

    def _json_object(self, value: str, name: str) -> dict[str, Any]:
        try:
            document = json.loads(value)
        except json.JSONDecodeError:
            # A decoder message quotes the content: name the secret only.
            document = None
        if not isinstance(document, dict):
            raise SinkMetadataError(
                f"{KIND}: secret {name!r} is not a JSON object, so field "
                f"{self._json_key!r} cannot be kept in it"
            ) from None
        return document

    def _record_tags(self, record: SinkRecord, credential: str, name: str) -> dict[str, str]:
        tags = {
            CREDENTIAL_TAG: _encode_tag_value(credential),
            WORKSPACE_TAG: _encode_tag_value(self._workspace),
        }
        for field in _RECORD_FIELDS:
            value = getattr(record, field)
            if value is None:
                continue
            text = format_time(value) if isinstance(value, datetime) else str(value)
            encoded = _encode_tag_value(text)
            if len(encoded) > _MAX_TAG_VALUE:
                raise SinkError(
                    f"{KIND}: secret {name!r}: {field} is too long for a tag value "
                    f"({_MAX_TAG_VALUE} characters)"
                )
            tags[TAG_PREFIX + field] = encoded
        return tags

    def _parse_record(
        self, tags: Mapping[str, str], name: str, credential: str
    ) -> SinkRecord | None:
        where = f"{KIND}: secret {name!r}"
        if WORKSPACE_TAG in tags and tags[WORKSPACE_TAG] != _encode_tag_value(self._workspace):
            raise SinkMetadataError(
                f"{where} is tagged for another workspace, not {self._workspace!r} "
                "(give the secret name template a {workspace})"
            )
        if CREDENTIAL_TAG not in tags:
            if any(TAG_PREFIX + field in tags for field in _RECORD_FIELDS):
                raise SinkMetadataError(f"{where} has key-rotator tags but no {CREDENTIAL_TAG}")
            return None
        values: dict[str, str | None] = {}
        for key in (CREDENTIAL_TAG, *(TAG_PREFIX + field for field in _RECORD_FIELDS)):
            raw = tags.get(key)
            try:
                values[key.removeprefix(TAG_PREFIX)] = (
                    None if raw is None else _decode_tag_value(raw)
                )
            except ValueError as exc:
                raise SinkMetadataError(f"{where}: tag {key} is not readable") from exc
        if values["credential"] != credential:
            raise SinkMetadataError(
                f"{where} holds the record of another credential, not {credential!r}"
            )
        return record_from_fields(
            values, where=where, key_of=lambda field: field, credential=credential
        )

    def _check_expected(
        self,
        described: Mapping[str, Any] | None,
        expected: str | None,
        name: str,
        credential: str,
    ) -> None:
        stored = None
        if described is not None:
            stored = _version(_current_version_id(described), _rotator_tags(described))
        if stored != expected:
            raise SinkConflictError(
                f"{KIND}: secret {name!r} of {credential!r} changed since it was read"
            )


def _check_template(template: str) -> None:
    """ConfigError unless ``template`` makes valid, distinct secret names."""
    problem = _template_problem(template)
    if problem is not None:
        raise ConfigError([f"{_TEMPLATE_VARIABLE}: {template!r}: {problem}"])


def _template_problem(template: str) -> str | None:
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError:
        return "unbalanced braces"
    names = {name for _, name, _, _ in parts if name is not None}
    unknown = names - {"workspace", "credential"}
    if unknown:
        listed = ", ".join(sorted("{" + name + "}" for name in unknown))
        return f"unknown placeholders {listed}: use {{workspace}} and {{credential}}"
    if any(spec or conversion for _, _, spec, conversion in parts):
        return "placeholders take no format spec or conversion"
    if _UNSAFE_NAME_CHARS.search("".join(text for text, _, _, _ in parts)):
        return "AWS secret names allow only A-Za-z0-9/_+=.@-"
    return None


def _safe_name(value: str) -> str:
    return _UNSAFE_NAME_CHARS.sub("_", value)


def _snake_case(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


def _encode_tag_value(text: str) -> str:
    """``text`` as a tag value: itself when AWS takes it unchanged, else ``b64:`` + base64."""
    plain = (
        text
        and _PLAIN_TAG_VALUE.fullmatch(text)
        and text == text.strip()  # AWS may trim; keep the value exact
        and not text.startswith(_ENCODED_PREFIX)
        and len(text) <= _MAX_TAG_VALUE
    )
    if plain:
        return text
    return _ENCODED_PREFIX + base64.b64encode(text.encode()).decode("ascii")


def _decode_tag_value(value: str) -> str:
    """The text a tag value holds; ValueError when it is not one this module wrote."""
    if not value.startswith(_ENCODED_PREFIX):
        return value
    try:
        return base64.b64decode(value.removeprefix(_ENCODED_PREFIX), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("not base64 of UTF-8") from exc


def _tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in sorted(tags.items())]


def _rotator_tags(described: Mapping[str, Any]) -> dict[str, str]:
    """The secret's ``key-rotator:`` tags, still encoded."""
    return {
        str(tag["Key"]): str(tag.get("Value", ""))
        for tag in described.get("Tags") or ()
        if str(tag.get("Key", "")).startswith(TAG_PREFIX)
    }


def _current_version_id(described: Mapping[str, Any]) -> str | None:
    for version_id, stages in (described.get("VersionIdsToStages") or {}).items():
        if "AWSCURRENT" in stages:
            return str(version_id)
    return None


def _version(current: str | None, tags: Mapping[str, str]) -> str:
    """The version token: the AWSCURRENT VersionId and a digest of the key-rotator tags."""
    digest = hashlib.sha256()
    for key, value in sorted(tags.items()):
        digest.update(f"{key}\0{value}\0".encode())
    return f"{current or '-'}/{digest.hexdigest()[:16]}"


def _request_token(name: str, pending_key_tag: str | None, secret_string: str) -> str:
    """The ClientRequestToken (the new VersionId) of putting ``secret_string``.

    Derived from the pending key's id and the value, so a retried put of the same delivery is
    the same request (idempotent at AWS), and another value never reuses a VersionId. The
    value enters only as its SHA-256, which the tags show already.
    """
    value_sha256 = hashlib.sha256(secret_string.encode()).hexdigest()
    return str(uuid.uuid5(_TOKEN_NAMESPACE, f"{name}\n{pending_key_tag or ''}\n{value_sha256}"))


def from_settings(
    settings: AwsSecretsManagerSinkSettings, context: SinkContext
) -> AwsSecretsManagerSink:
    """The sink of one workspace, from its settings (the registry's entry point)."""
    return AwsSecretsManagerSink(
        region=settings.region,
        secret_id_template=settings.secret_id,
        workspace=context.workspace,
        json_key=settings.json_key,
        endpoint_url=settings.endpoint_url,
        kms_key_id=settings.kms_key_id,
        timeout_seconds=context.timeout_seconds,
    )
