"""Every ROTATOR_* variable with its default and meaning, for ``--help`` (no pydantic).

GENERATED from the settings models by ``python scripts/generate_variables.py``: do not
edit. A test fails when this file differs from what the models say, so it cannot drift.
Only plain data, no import: ``rotator --help`` must stay fast. Each variable may also be
given as ``<NAME>_FILE``.
"""

__all__ = ["DOCS_URL", "VARIABLES"]

#: Where the full documentation is, online (the image holds no README).
DOCS_URL = "https://github.com/key-rotator/key-rotator#readme"

#: name -> (default as shown, one line of meaning, the sink it belongs to or ""), sorted.
VARIABLES: dict[str, tuple[str, str, str]] = {
    "ROTATOR_API_KEY": (
        "required, or ROTATOR_API_KEY_FILE",
        "The rotator's own credential: an admin's API key for the workspace.",
        "",
    ),
    "ROTATOR_API_KEY_FILE": (
        "unset",
        "Path of a file holding the rotator's API key (a mounted Secret); wins over ROTATOR_API_KEY and is read again at every pass, so a rotated own key is picked up without a restart.",
        "",
    ),
    "ROTATOR_API_URL": (
        "https://api.projectmanager.com",
        "Base URL of the ProjectManager API (a trailing / is dropped).",
        "",
    ),
    "ROTATOR_CONCURRENCY": (
        "8",
        "Rotations in flight at once, over all workspaces.",
        "",
    ),
    "ROTATOR_DRY_RUN": (
        "false",
        "Plan and log, change nothing.",
        "",
    ),
    "ROTATOR_EMERGENCY_GRACE_HOURS": (
        "0",
        "Hours of grace for `rotate --now`.",
        "",
    ),
    "ROTATOR_EXCLUDE_KEY_NAMES": (
        "empty",
        "Comma-separated glob patterns never managed, whatever key_names says.",
        "",
    ),
    "ROTATOR_GRACE_HOURS": (
        "24",
        "Hours the previous key stays valid after its replacement was delivered; may be 0 or fractional.",
        "",
    ),
    "ROTATOR_HTTP_HOST": (
        "0.0.0.0",
        "Address `serve` listens on.",
        "",
    ),
    "ROTATOR_HTTP_MAX_RETRIES": (
        "4",
        "Retries of a request after a connection error, 429 or 5xx (exponential backoff with jitter, each wait at most 30 s).",
        "",
    ),
    "ROTATOR_HTTP_PORT": (
        "8080",
        "TCP port of /healthz, /readyz and /metrics.",
        "",
    ),
    "ROTATOR_HTTP_TIMEOUT_SECONDS": (
        "10",
        "Seconds per API request.",
        "",
    ),
    "ROTATOR_INTEGRATION_NAME": (
        "key-rotator",
        "Sent as x-integration-name; shows in ProjectManager's audit log.",
        "",
    ),
    "ROTATOR_KEY_NAMES": (
        "required",
        "Comma-separated glob patterns of the base names of the keys to manage.",
        "",
    ),
    "ROTATOR_LEASE_DURATION_SECONDS": (
        "60",
        "Seconds after which a Lease not renewed is free again (a killed pod's lock expires); renewed well within it.",
        "",
    ),
    "ROTATOR_LEASE_NAMESPACE": (
        "the pod's own namespace",
        "Where the Leases live.",
        "",
    ),
    "ROTATOR_LOCK": (
        "auto",
        "The pass lock of a workspace: auto (a Kubernetes Lease when the service-account token is mounted, else a file lock), lease or file.",
        "",
    ),
    "ROTATOR_LOCK_DIR": (
        "the file sink's folder",
        "Folder of the file lock .rotator.lock (a subfolder per workspace when there are several).",
        "",
    ),
    "ROTATOR_LOG_FORMAT": (
        "auto",
        "json (one object a line), console, or auto: console when standard error is a terminal, else json.",
        "",
    ),
    "ROTATOR_LOG_LEVEL": (
        "info",
        "Lowest level logged.",
        "",
    ),
    "ROTATOR_MAX_AGE_DAYS": (
        "unset",
        "Days: also rotate a key older than this (a company's rotation policy); at most validity_days.",
        "",
    ),
    "ROTATOR_MAX_FAILURE_RATIO": (
        "0.5",
        "Share (0 to 1) of a workspace's rotations that may fail (after at least 3) before it stops creating keys.",
        "",
    ),
    "ROTATOR_MAX_ROTATIONS_PER_PASS": (
        "50",
        "Most rotations in one pass, most urgent first.",
        "",
    ),
    "ROTATOR_NOTIFY_ON": (
        "failure",
        "Which events notify (people and the webhook): comma-separated of failure, rotation, leak, all.",
        "",
    ),
    "ROTATOR_NOTIFY_URLS": (
        "empty",
        "Where people are told: Apprise URLs (slack://, msteams://, mailto://, json://, ...) separated by spaces or commas; one message per pass.",
        "",
    ),
    "ROTATOR_ORPHAN_MIN_AGE_MINUTES": (
        "10",
        "Minutes: a rotator-made key no sink holds is revoked once this old.",
        "",
    ),
    "ROTATOR_PUSHGATEWAY_URL": (
        "unset",
        "`run-once` pushes its metrics there.",
        "",
    ),
    "ROTATOR_ROTATE_BEFORE_DAYS": (
        "30",
        "Days: rotate when fewer are left; below validity_days.",
        "",
    ),
    "ROTATOR_RUN_ON_START": (
        "true",
        "`serve` runs a pass as soon as it starts.",
        "",
    ),
    "ROTATOR_SCHEDULE": (
        "0 3 * * *",
        "POSIX cron expression of `serve`'s passes.",
        "",
    ),
    "ROTATOR_SELF_KEY_NAME": (
        "unset",
        "Base name of the rotator's own key: rotated last in its workspace and delivered through the sink (mount that target as ROTATOR_API_KEY_FILE).",
        "",
    ),
    "ROTATOR_SHARDS": (
        "1",
        "Split the workspaces over this many pods (an Indexed Job).",
        "",
    ),
    "ROTATOR_SHARD_INDEX": (
        "JOB_COMPLETION_INDEX, else 0",
        "Which share this pod takes, below shards.",
        "",
    ),
    "ROTATOR_SHUTDOWN_TIMEOUT_SECONDS": (
        "60",
        "Seconds `serve` may take after SIGTERM to finish the credential in flight.",
        "",
    ),
    "ROTATOR_SINK": (
        "file",
        "where secrets are delivered: file, kubernetes, vault, aws-secrets-manager or exec.",
        "",
    ),
    "ROTATOR_SINK_AWS_SECRETS_MANAGER_ENDPOINT_URL": (
        "unset",
        "Another endpoint (a VPC endpoint, a test server); https unless loopback.",
        "aws-secrets-manager",
    ),
    "ROTATOR_SINK_AWS_SECRETS_MANAGER_JSON_KEY": (
        "unset",
        "When set, the SecretString is a JSON object and the key is this field of it (other fields are kept).",
        "aws-secrets-manager",
    ),
    "ROTATOR_SINK_AWS_SECRETS_MANAGER_KMS_KEY_ID": (
        "unset",
        "KMS key for secrets the rotator creates.",
        "aws-secrets-manager",
    ),
    "ROTATOR_SINK_AWS_SECRETS_MANAGER_REGION": (
        "AWS_REGION, else AWS_DEFAULT_REGION",
        "The AWS region of the secrets.",
        "aws-secrets-manager",
    ),
    "ROTATOR_SINK_AWS_SECRETS_MANAGER_SECRET_ID": (
        "key-rotator/{workspace}/{credential}",
        "Name template of each credential's secret ({workspace}, {credential}; {credential} required); a name, not a secret.",
        "aws-secrets-manager",
    ),
    "ROTATOR_SINK_EXEC_COMMAND": (
        "required",
        "The program and its arguments, split into words as a POSIX shell would, never run through a shell.",
        "exec",
    ),
    "ROTATOR_SINK_EXEC_TIMEOUT_SECONDS": (
        "30",
        "Seconds per call; a call past it is killed and its outcome counts as unknown.",
        "exec",
    ),
    "ROTATOR_SINK_FILE_DIR": (
        "./secrets",
        "The folder holding each credential's file and its metadata (with several workspaces, a subfolder per workspace).",
        "file",
    ),
    "ROTATOR_SINK_KUBERNETES_KUBECONFIG": (
        "the in-cluster account, else KUBECONFIG or ~/.kube/config",
        "A kubeconfig for running outside a cluster.",
        "kubernetes",
    ),
    "ROTATOR_SINK_KUBERNETES_NAMESPACE": (
        "the pod's own, else default",
        "Namespace of the Secrets.",
        "kubernetes",
    ),
    "ROTATOR_SINK_KUBERNETES_RESTART": (
        "empty",
        "Workloads restarted after a delivery, as CREDENTIAL=Kind/name,Kind/name;CREDENTIAL=... (Kind: Deployment, StatefulSet, DaemonSet; CREDENTIAL may be a glob).",
        "kubernetes",
    ),
    "ROTATOR_SINK_KUBERNETES_ROLLOUT_TIMEOUT_MINUTES": (
        "30",
        "Minutes a restart may take before it is reported stalled (the previous key stays until it completes).",
        "kubernetes",
    ),
    "ROTATOR_SINK_KUBERNETES_SECRET_KEY": (
        "api-key",
        "The Secret's data key that holds the secret.",
        "kubernetes",
    ),
    "ROTATOR_SINK_KUBERNETES_SECRET_NAME": (
        "pm-api-key-{credential}",
        "Name template of each credential's Secret ({workspace}, {credential}; their values are made DNS-1123 safe).",
        "kubernetes",
    ),
    "ROTATOR_SINK_VAULT_ADDR": (
        "required",
        "URL of the Vault server.",
        "vault",
    ),
    "ROTATOR_SINK_VAULT_AUTH": (
        "token",
        "token, approle or kubernetes.",
        "vault",
    ),
    "ROTATOR_SINK_VAULT_AUTH_MOUNT": (
        "the auth method's name",
        "Where the auth method is mounted.",
        "vault",
    ),
    "ROTATOR_SINK_VAULT_CACERT": (
        "unset",
        "A CA bundle for Vault's certificate.",
        "vault",
    ),
    "ROTATOR_SINK_VAULT_FIELD": (
        "api_key",
        "The field of the secret's data that holds the key.",
        "vault",
    ),
    "ROTATOR_SINK_VAULT_MOUNT": (
        "secret",
        "The KV v2 mount.",
        "vault",
    ),
    "ROTATOR_SINK_VAULT_NAMESPACE": (
        "unset",
        "A Vault (Enterprise) namespace.",
        "vault",
    ),
    "ROTATOR_SINK_VAULT_PATH": (
        "key-rotator/{workspace}/{credential}",
        "Path template inside the mount ({workspace}, {credential}; {credential} required).",
        "vault",
    ),
    "ROTATOR_SINK_VAULT_ROLE": (
        "required with auth kubernetes",
        "The Vault role the pod's service-account token logs in as.",
        "vault",
    ),
    "ROTATOR_SINK_VAULT_ROLE_ID": (
        "required with auth approle",
        "The AppRole role id.",
        "vault",
    ),
    "ROTATOR_SINK_VAULT_SECRET_ID": (
        "required with auth approle",
        "The AppRole secret id, usually as ROTATOR_SINK_VAULT_SECRET_ID_FILE.",
        "vault",
    ),
    "ROTATOR_SINK_VAULT_TOKEN": (
        "required with auth token",
        "The Vault token (auth token), usually as ROTATOR_SINK_VAULT_TOKEN_FILE.",
        "vault",
    ),
    "ROTATOR_TIMEZONE": (
        "UTC",
        "IANA zone of the schedule.",
        "",
    ),
    "ROTATOR_TRIGGER_TOKEN": (
        "unset: no trigger endpoints",
        "Bearer token that `serve`'s POST /v1/rotate and POST /v1/leaks require (usually given as ROTATOR_TRIGGER_TOKEN_FILE); at least 16 characters: a short token is guessed.",
        "",
    ),
    "ROTATOR_VALIDITY_DAYS": (
        "730",
        "Days: a key's lifetime; its creation time is `expires` minus this.",
        "",
    ),
    "ROTATOR_WEBHOOK_SECRET": (
        "required with ROTATOR_WEBHOOK_URL",
        "The Standard Webhooks signing secret, whsec_ + base64; usually as ROTATOR_WEBHOOK_SECRET_FILE.",
        "",
    ),
    "ROTATOR_WEBHOOK_URL": (
        "unset",
        "Where machines are told: each event is POSTed there as JSON, signed per Standard Webhooks. https unless the host is loopback.",
        "",
    ),
    "ROTATOR_WORKSPACES_FILE": (
        "unset",
        "A YAML file listing several workspaces, each with its own credential (replaces ROTATOR_API_KEY).",
        "",
    ),
    "ROTATOR_WORKSPACE_CONCURRENCY": (
        "2",
        "Rotations in flight at once in one workspace.",
        "",
    ),
    "ROTATOR_WORKSPACE_ID": (
        "unset",
        "When set, a credential whose `me` answers for another workspace id is refused.",
        "",
    ),
    "ROTATOR_WORKSPACE_NAME": (
        "default",
        "The workspace's label in logs and metrics, and part of its Lease's name.",
        "",
    ),
}
