#!/usr/bin/env bash
# CI for the container image: build the Dockerfile with buildah (no Docker engine needed) and
# run what it built:
#   - `rotator --help`, `rotator demo`;
#   - `rotator check-config` with no credential, which must exit 2;
#   - `rotator run-once` against the bundled emulator (itself run from the image, on loopback),
#     with the file sink on a volume, proving that nothing outside /tmp and that volume changed
#     in the container's file tree;
#   - `rotator rotate NAME --now` with the root file system mounted read-only, as Kubernetes'
#     readOnlyRootFilesystem does;
#   - (hook) `rotator run-once` with the kubernetes sink against the tests' loopback API server.
# It reports the image's size against its base, and fails when the venv it adds is over 100 MB.
# Root only (apt, buildah's storage, chroot);
# exits non-zero on any failure.
#
# No image registry is reachable from CI, so the Dockerfile's base (python:3.11-slim) is made
# here as a stand-in: a minimal Debian 12 (the official slim images' own base) with Debian's
# python3, and a venv in /usr/local so that python and pip are where the official image has
# them. It is kept in buildah's storage and reused by later runs on the same machine; it is made
# again when STAND_IN_RECIPE below changes, or with CI_IMAGE_FRESH_BASE=1.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "scripts/ci_image.sh: run as root (apt-get, buildah's storage, chroot)" >&2
    exit 2
fi

started=$SECONDS
BASE=docker.io/library/python:3.11-slim
IMAGE=rotator:test
# Bump when the stand-in's recipe below changes, so cached copies are made again.
STAND_IN_RECIPE=1
STAND_IN_LABEL=io.key-rotator.ci.stand-in-recipe
# vfs: works on any file system and kernel, no overlay or fuse needed. chroot isolation: the
# default (OCI runtime) isolation fails on this kernel's cgroups, and chroot shares the host's
# network, so containers reach each other on 127.0.0.1.
BUILDAH=(buildah --storage-driver vfs)
RUN=("${BUILDAH[@]}" run --isolation chroot)
UID_IN_IMAGE=10001

step() { printf '== image: %s (%ss)\n' "$1" "$((SECONDS - started))"; }
fail() { echo "scripts/ci_image.sh: FAILED: $*" >&2; exit 1; }

work=$(mktemp -d /var/tmp/rotator-ci-image.XXXXXX)
containers=()
background=()  # pids of the servers this script started
cleanup() {
    local status=$? pid id
    for pid in "${background[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    for id in "${containers[@]}"; do
        "${BUILDAH[@]}" rm "$id" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT

new_container() {  # IMAGE: a new working container, removed at exit; its id in $new
    new=$("${BUILDAH[@]}" from --pull=never --quiet "$1")
    containers+=("$new")
}

# --- tools ----------------------------------------------------------------------------------------
missing=()
for tool in buildah crun debootstrap; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    step "installing ${missing[*]} (Debian packages)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

# --- the stand-in base image ----------------------------------------------------------------------
base_recipe() {
    "${BUILDAH[@]}" inspect --type image \
        --format "{{index .OCIv1.Config.Labels \"$STAND_IN_LABEL\"}}" "$BASE" 2>/dev/null
}

apt_mirror() {  # the first URIs: of the machine's own apt sources (deb822), else sources.list
    local mirror=""
    if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
        mirror=$(awk '$1 == "URIs:" { print $2; exit }' /etc/apt/sources.list.d/*.sources)
    fi
    if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
        mirror=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; exit } }' \
            /etc/apt/sources.list)
    fi
    [ -n "$mirror" ] || fail "no apt mirror found in /etc/apt/sources.list.d/*.sources"
    printf '%s\n' "$mirror"
}

make_stand_in() {
    local rootfs="$work/rootfs" mirror container mount
    mirror=$(apt_mirror)
    step "making the stand-in $BASE: debootstrap bookworm from $mirror"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
        || { tail -20 "$work/debootstrap.log" >&2; fail "debootstrap"; }
    # python, python3 and pip in /usr/local/bin, and no "externally managed" refusal, as in the
    # official image.
    chroot "$rootfs" python3 -m venv /usr/local
    # The registries are reached through a proxy whose CA is in this machine's bundle.
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ci-ca-bundle.crt"
    # Like the official slim images: no package lists or downloaded packages.
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb \
        "$rootfs"/var/log/*.log
    container=$("${BUILDAH[@]}" from scratch)
    containers+=("$container")  # removed at exit if anything below fails
    mount=$("${BUILDAH[@]}" mount "$container")
    cp -a "$rootfs/." "$mount/"
    "${BUILDAH[@]}" umount "$container" >/dev/null
    rm -rf "$rootfs"
    "${BUILDAH[@]}" config \
        --env PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env LANG=C.UTF-8 \
        --env PIP_CERT=/etc/ssl/certs/ci-ca-bundle.crt \
        --env SSL_CERT_FILE=/etc/ssl/certs/ci-ca-bundle.crt \
        --cmd python3 \
        --label "$STAND_IN_LABEL=$STAND_IN_RECIPE" \
        "$container"
    "${BUILDAH[@]}" commit --quiet --rm "$container" "$BASE" >/dev/null
}

recipe=$(base_recipe || true)
if [ "${CI_IMAGE_FRESH_BASE:-0}" = 1 ] || [ "$recipe" != "$STAND_IN_RECIPE" ]; then
    if "${BUILDAH[@]}" inspect --type image "$BASE" >/dev/null 2>&1 && [ -z "$recipe" ] \
        && [ "${CI_IMAGE_FRESH_BASE:-0}" != 1 ]; then
        step "using $BASE as found in buildah's storage (not a stand-in made here)"
    else
        base_started=$SECONDS
        make_stand_in
        step "stand-in made in $((SECONDS - base_started))s"
    fi
else
    step "reusing the stand-in $BASE (recipe $STAND_IN_RECIPE)"
fi

# --- build ----------------------------------------------------------------------------------------
step "building $IMAGE"
"${BUILDAH[@]}" rmi "$IMAGE" >/dev/null 2>&1 || true
build_started=$SECONDS
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
"${BUILDAH[@]}" bud --isolation chroot --pull=never --quiet \
    --build-arg "REVISION=$revision" \
    --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    -t "$IMAGE" . >"$work/build.log" 2>&1 \
    || { tail -40 "$work/build.log" >&2; fail "buildah bud"; }
step "built in $((SECONDS - build_started))s"


# --- the image's metadata -------------------------------------------------------------------------
config() { "${BUILDAH[@]}" inspect --type image --format "$1" "$IMAGE"; }
[ "$(config '{{.OCIv1.Config.User}}')" = "$UID_IN_IMAGE:$UID_IN_IMAGE" ] || fail "USER is not $UID_IN_IMAGE"
[ "$(config '{{index .OCIv1.Config.Labels "org.opencontainers.image.revision"}}')" = "$revision" ] \
    || fail "the OCI revision label is not $revision"
[ "$(config '{{index .OCIv1.Config.Labels "org.opencontainers.image.version"}}')" \
    = "$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml)" ] \
    || fail "the OCI version label is not pyproject.toml's version"

# --- commands -------------------------------------------------------------------------------------
new_container "$IMAGE"
container=$new

step "rotator --help"
"${RUN[@]}" "$container" -- rotator --help >"$work/help.out" || fail "rotator --help"
grep -q "run-once" "$work/help.out" || fail "rotator --help does not list run-once"

step "rotator check-config without a credential (must exit 2)"
status=0
"${RUN[@]}" "$container" -- rotator check-config >"$work/check.out" 2>"$work/check.err" || status=$?
[ "$status" = 2 ] || { cat "$work/check.err" >&2; fail "check-config exited $status, not 2"; }
grep -q "ROTATOR_API_KEY" "$work/check.err" || fail "check-config's message names no ROTATOR_API_KEY"

step "rotator demo"
"${RUN[@]}" "$container" -- rotator demo >"$work/demo.out" 2>"$work/demo.err" \
    || { tail -20 "$work/demo.err" >&2; fail "rotator demo"; }


# The SDK of every sink extra the image was built with (EXTRAS) is importable: each requirement
# of those extras, as the installed project's metadata lists them, is installed.
"${RUN[@]}" "$container" -- python - <<'PY' || fail "an extra's requirement is not installed"
import importlib.metadata as metadata
import re

wanted = {"kubernetes", "vault", "aws-secrets-manager", "notify"}
dist = metadata.distribution("key-rotator")
provided = set(dist.metadata.get_all("Provides-Extra") or [])
missing = []
for requirement in dist.requires or []:
    extra = re.search(r"""extra\s*==\s*["']([^"']+)["']""", requirement)
    if extra and extra.group(1) in wanted:
        name = re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0]
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(f"{name} (extra {extra.group(1)})")
print("extras in the image:", sorted(provided & wanted) or "none defined yet")
raise SystemExit(f"not installed: {missing}" if missing else 0)
PY

# --- run-once against the emulator, the file sink on a volume --------------------------------------
# The world: an admin key for the rotator, a key due for rotation (10 days left) and one for the
# kubernetes hook below. The admin key is random per run, as a real one would be.
mkdir -p "$work/seed" "$work/key" "$work/state"
admin_key="pm_ci_admin_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
expires=$(date -u -d '+10 days' +%Y-%m-%dT%H:%M:%SZ)
cat >"$work/seed/seed.json" <<JSON
{"workspaces": [{"name": "CI", "keys": [
  {"name": "rotator-admin", "secret": "$admin_key"},
  {"name": "billing-sync", "expires": "$expires"},
  {"name": "reporting-daily", "expires": "$expires"}]}]}
JSON
printf '%s' "$admin_key" >"$work/key/api-key"
chmod 0444 "$work/seed/seed.json" "$work/key/api-key"
chown "$UID_IN_IMAGE:$UID_IN_IMAGE" "$work/state"
chmod 0700 "$work/state"

step "rotator emulator (from the image, on loopback)"
# In the first container: a working container costs a full copy of the image with vfs.
"${RUN[@]}" -v "$work/seed:/seed:ro" "$container" -- \
    rotator emulator --port 0 --seed /seed/seed.json >"$work/emulator.out" 2>"$work/emulator.err" &
emulator_pid=$!
background+=("$emulator_pid")
api_url=""
for _ in $(seq 1 150); do
    api_url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$work/emulator.out" || true)
    [ -n "$api_url" ] && break
    kill -0 "$emulator_pid" 2>/dev/null || { cat "$work/emulator.err" >&2; fail "the emulator exited"; }
    sleep 0.2
done
[ -n "$api_url" ] || fail "the emulator printed no ready line within 30 s"

# As the pod specs in config/kubernetes/ have it: the credential in a read-only mounted folder,
# the file sink's folder on a volume, and a scratch /tmp. (/run/secrets, not /var/run/secrets as
# in the pod specs: buildah does not follow the /var/run symlink for a mount; it is the same
# folder.)
pass_env=(
    --env "ROTATOR_API_URL=$api_url"
    --env ROTATOR_API_KEY_FILE=/run/secrets/rotator/api-key
    --env "ROTATOR_KEY_NAMES=billing-*"
    --env ROTATOR_GRACE_HOURS=0
    --env ROTATOR_SINK=file
    --env ROTATOR_SINK_FILE_DIR=/var/lib/rotator/secrets
)
pass_mounts=(
    -v "$work/key:/run/secrets/rotator:ro"
    -v "$work/state:/var/lib/rotator"
    --mount type=tmpfs,destination=/tmp
)
new_container "$IMAGE"
pass_container=$new
rootfs=$("${BUILDAH[@]}" mount "$pass_container")

# Every entry of the container's own file tree (type, mode, owner, size, mtime, link target) and
# every file's SHA-256; /tmp and the volume are left out. The mtime of /run is left out too:
# buildah itself (as root, before the command starts) creates and removes /run/.containerenv there
# for each run.
tree_snapshot() {
    (
        cd "$rootfs"
        find . \( -path ./tmp -o -path ./var/lib/rotator \) -prune -o \
            -printf '%y %m %U:%G %s %T@ %p -> %l\n' \
            | sed 's|^\(d [0-9]* [0-9:]* [0-9]*\) [0-9.]* \./run -> $|\1 - ./run -> |' \
            | LC_ALL=C sort
        find . \( -path ./tmp -o -path ./var/lib/rotator \) -prune -o -type f -print0 \
            | LC_ALL=C sort -z | xargs -0 sha256sum
    )
}

# The first run with these mounts also lets buildah make their mount points in the tree, before
# the snapshot; check-config must accept the settings.
step "rotator check-config with the pass's settings"
"${RUN[@]}" "${pass_env[@]}" "${pass_mounts[@]}" "$pass_container" -- \
    rotator check-config >"$work/check-ok.out" 2>"$work/check-ok.err" \
    || { cat "$work/check-ok.err" >&2; fail "check-config refused the pass's settings"; }

tree_snapshot >"$work/tree.before"
step "rotator run-once (emulator, file sink on a volume)"
"${RUN[@]}" "${pass_env[@]}" "${pass_mounts[@]}" "$pass_container" -- \
    rotator run-once >"$work/run-once.out" 2>"$work/run-once.err" \
    || { tail -20 "$work/run-once.err" >&2; fail "run-once"; }
tree_snapshot >"$work/tree.after"
if ! diff -u "$work/tree.before" "$work/tree.after" >"$work/tree.diff"; then
    head -40 "$work/tree.diff" >&2
    fail "run-once changed the container's file tree outside /tmp and the volume"
fi
echo "container tree unchanged outside /tmp and the volume ($(wc -l <"$work/tree.before") entries and hashes compared)"

# What a pass must have left on the volume: the secret (mode 0600, the image's user), its
# metadata and its rotation history, no temporary file; and in the logs and the history, never
# the secret.
secret_file="$work/state/secrets/billing-sync"
[ -f "$secret_file" ] || fail "run-once delivered no secrets/billing-sync"
[ "$(stat -c '%a %u' "$secret_file")" = "600 $UID_IN_IMAGE" ] \
    || fail "secrets/billing-sync is $(stat -c '%a %u' "$secret_file"), not 600 $UID_IN_IMAGE"
[ -f "$work/state/secrets/billing-sync.meta.json" ] || fail "no billing-sync.meta.json"
[ -f "$work/state/secrets/billing-sync.history.json" ] || fail "no billing-sync.history.json"
leftovers=$(find "$work/state/secrets" -type f ! -name 'billing-sync' ! -name 'billing-sync.meta.json' \
    ! -name 'billing-sync.history.json' ! -name '.rotator.lock')
[ -z "$leftovers" ] || fail "files left on the volume: $leftovers"
if grep -qF -f "$secret_file" "$work/run-once.err" "$work/run-once.out" \
    "$work/state/secrets/billing-sync.history.json"; then
    fail "the delivered secret appears in run-once's output or the history"
fi
grep -q '"event": *"rotation.delivered"' "$work/run-once.err" || fail "no rotation.delivered event"

# The pass's result as the API sees it: billing-sync's current key is the rotator's replacement,
# and the old key is gone (grace 0).
"${RUN[@]}" "${pass_env[@]}" "${pass_mounts[@]}" "$pass_container" -- \
    rotator status --json >"$work/status.json" 2>"$work/status.err" \
    || { cat "$work/status.err" >&2; fail "rotator status --json"; }
python3 - "$work/status.json" "$work/state/secrets/billing-sync.meta.json" <<'PY' \
    || fail "status after run-once"
import json, sys
keys = [k for k in json.load(open(sys.argv[1])) if k["credential"] == "billing-sync"]
meta = json.load(open(sys.argv[2]))
current = [k for k in keys if k["role"] == "current"]
assert len(current) == 1 and current[0]["key_id"] == meta["key_id"], keys
assert current[0]["name"].startswith("billing-sync@"), current
assert all(k["name"].startswith("billing-sync@") for k in keys), f"the old key was not revoked: {keys}"
PY

# --- the same image with a read-only root file system ---------------------------------------------
# buildah run cannot mount the root read-only, so this runs the container's tree as Kubernetes'
# readOnlyRootFilesystem would: a private mount namespace, the tree bind-mounted read-only, a
# tmpfs on /tmp, the volume and the credential bound in, the image's user, environment and
# working directory. A write anywhere else fails with EROFS and the command with it.
run_read_only() {  # COMMAND... (inside the container's tree)
    local -a environment=()
    local line workdir key_dir
    while IFS= read -r line; do
        [ -n "$line" ] && environment+=("$line")
    done < <("${BUILDAH[@]}" inspect --type container \
        --format '{{range .OCIv1.Config.Env}}{{println .}}{{end}}' "$pass_container")
    workdir=$("${BUILDAH[@]}" inspect --type container --format '{{.OCIv1.Config.WorkingDir}}' \
        "$pass_container")
    # Resolved inside the tree: were it a symlink there, on the host side of the chroot it would
    # lead to the host's own files.
    key_dir=$(chroot "$rootfs" readlink -f /run/secrets/rotator)
    unshare --mount --propagation private -- /bin/sh -ec '
        root=$1 work=$2 key_dir=$3 user=$4; shift 4
        mount --bind "$root" "$root"
        mount -o remount,bind,ro "$root"
        mount -t tmpfs -o size=16m,mode=1777 tmpfs "$root/tmp"
        mount -t proc proc "$root/proc"
        mount --bind "$work/state" "$root/var/lib/rotator"
        mount --bind "$work/key" "$root$key_dir"
        mount -o remount,bind,ro "$root$key_dir"
        exec chroot --userspec="$user:$user" "$root" /usr/bin/env -i "$@"
    ' sh "$rootfs" "$work" "$key_dir" "$UID_IN_IMAGE" "${environment[@]}" \
        "ROTATOR_API_URL=$api_url" ROTATOR_API_KEY_FILE=/run/secrets/rotator/api-key \
        "ROTATOR_KEY_NAMES=billing-*" ROTATOR_GRACE_HOURS=0 ROTATOR_SINK=file \
        ROTATOR_SINK_FILE_DIR=/var/lib/rotator/secrets \
        /bin/sh -c 'cd "$0" && exec "$@"' "$workdir" "$@"
}

step "rotator rotate billing-sync --now (read-only root file system)"
previous_secret_sha=$(sha256sum <"$secret_file")
# /var/tmp is writable by everyone in the image: only a read-only mount stops the image's user.
run_read_only sh -c 'if touch /var/tmp/rotator-probe 2>/dev/null; then exit 1; fi' \
    || fail "the root file system was writable in the read-only run"
run_read_only rotator rotate billing-sync --now >"$work/rotate.out" 2>"$work/rotate.err" \
    || { tail -20 "$work/rotate.err" >&2; fail "rotate --now with a read-only root"; }
[ "$(sha256sum <"$secret_file")" != "$previous_secret_sha" ] \
    || fail "rotate --now delivered no new secret"

# --- HOOK: run-once with the kubernetes sink against the tests' loopback API server ---------------
# The tests' stand-in of the Kubernetes API (tests/k8s/apiserver.py: ApiServer, write_kubeconfig)
# serves Secrets and Leases on 127.0.0.1, with RBAC. This step starts it from the project's venv
# with a token allowed exactly what the Roles of components/kubernetes-sink allow, points the
# image at it through a kubeconfig, runs one pass that must deliver reporting-daily into a
# Secret, and reads that Secret back. It runs once the stand-in, the kubernetes sink and the
# image's kubernetes extra exist; until then it says so and the script goes on.
k8s_hook_ready() {
    [ -f tests/k8s/apiserver.py ] && [ -f rotator/sinks/kubernetes.py ] \
        && grep -q '^class ApiServer' tests/k8s/apiserver.py \
        && grep -q '^def write_kubeconfig' tests/k8s/apiserver.py \
        && "${RUN[@]}" "$container" -- python -c 'import lightkube' 2>/dev/null
}
if k8s_hook_ready; then
    step "rotator run-once with the kubernetes sink (loopback API server)"
    # shellcheck source=scripts/_venv.sh
    source scripts/_venv.sh "[dev]"
    mkdir -p "$work/kube" "$work/state/lock"
    chown "$UID_IN_IMAGE:$UID_IN_IMAGE" "$work/state/lock"
    "$VENV/bin/python" - "$work/kube" >"$work/apiserver.out" 2>"$work/apiserver.err" <<'PY' &
import secrets, sys, time
from pathlib import Path

import yaml

from tests.k8s.apiserver import ApiServer, Rule, write_kubeconfig

component = Path("config/kubernetes/components/kubernetes-sink")
rules = [
    Rule.from_manifest(rule)
    for path in sorted(component.glob("*.yaml"))
    for document in yaml.safe_load_all(path.read_text())
    if document and document.get("kind") == "Role"
    for rule in document["rules"]
]
assert rules, "no Role in components/kubernetes-sink"
token = secrets.token_hex(16)
server = ApiServer().start()
server.add_token(token, "system:serviceaccount:rotator-ci:rotator", rules)
config = write_kubeconfig(Path(sys.argv[1]) / "config", server.url, token, namespace="rotator-ci")
config.chmod(0o444)
print(server.url, flush=True)
try:
    while True:
        time.sleep(3600)
finally:
    server.stop()
PY
    apiserver_pid=$!
    background+=("$apiserver_pid")
    apiserver_url=""
    for _ in $(seq 1 150); do
        apiserver_url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$work/apiserver.out" || true)
        [ -n "$apiserver_url" ] && break
        kill -0 "$apiserver_pid" 2>/dev/null || break
        sleep 0.2
    done
    [ -n "$apiserver_url" ] || { cat "$work/apiserver.err" >&2; fail "the API server stand-in did not start"; }
    k8s_status=0
    "${RUN[@]}" -v "$work/kube:/kube:ro" "${pass_mounts[@]}" \
        --env "ROTATOR_API_URL=$api_url" \
        --env ROTATOR_API_KEY_FILE=/run/secrets/rotator/api-key \
        --env "ROTATOR_KEY_NAMES=reporting-*" \
        --env ROTATOR_GRACE_HOURS=0 \
        --env ROTATOR_SINK=kubernetes \
        --env ROTATOR_SINK_KUBERNETES_NAMESPACE=rotator-ci \
        --env ROTATOR_SINK_KUBERNETES_KUBECONFIG=/kube/config \
        --env ROTATOR_LOCK=file \
        --env ROTATOR_LOCK_DIR=/var/lib/rotator/lock \
        "$pass_container" -- rotator run-once >"$work/k8s.out" 2>"$work/k8s.err" || k8s_status=$?
    [ "$k8s_status" = 0 ] \
        || { tail -20 "$work/k8s.err" >&2; fail "run-once with the kubernetes sink exited $k8s_status"; }
    "$VENV/bin/python" - "$work/kube/config" "$work/k8s.secret" <<'PY' \
        || fail "the Secret pm-api-key-reporting-daily is not as delivered"
import base64, json, os, sys, urllib.request

config = json.load(open(sys.argv[1]))
server = config["clusters"][0]["cluster"]["server"]
token = config["users"][0]["user"]["token"]
url = f"{server}/api/v1/namespaces/rotator-ci/secrets/pm-api-key-reporting-daily"
request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
secret = json.load(urllib.request.urlopen(request, timeout=10))
labels = secret["metadata"]["labels"]
assert labels["app.kubernetes.io/managed-by"] == "key-rotator", labels
assert labels["key-rotator.io/credential"] == "reporting-daily", labels
value = base64.b64decode(secret["data"]["api-key"])
assert value and b"\n" not in value, "an empty or multi-line api-key"
# For the check below that the secret is in no log line.
descriptor = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(descriptor, value)
os.close(descriptor)
PY
    if grep -qF -f "$work/k8s.secret" "$work/k8s.err" "$work/k8s.out"; then
        fail "the delivered secret appears in run-once's output"
    fi
else
    echo "NOTE: the kubernetes-sink step did not run: it needs tests/k8s/apiserver.py (ApiServer," \
        "write_kubeconfig), rotator/sinks/kubernetes.py and the image's kubernetes extra"
fi

# --- size -----------------------------------------------------------------------------------------
# What the image adds to its base is the venv in /opt/rotator (the rest are a few labels and an
# empty folder). Its budget: 100 MB with every sink's library. Measured inside a container, so
# the figure does not depend on how a storage driver counts layers.
step "the venv's size (budget 100 MB above the base)"
venv_mb=$("${RUN[@]}" "$container" -- du -sm /opt/rotator | cut -f1)
echo "/opt/rotator: ${venv_mb} MiB"
[ "$venv_mb" -le 100 ] || fail "the venv is ${venv_mb} MiB, over the 100 MB budget above the base"

# --- summary --------------------------------------------------------------------------------------
sizes=$("${BUILDAH[@]}" images --format '{{.Name}}:{{.Tag}} {{.Size}}' | grep -E "^(localhost/$IMAGE|$BASE) ")
echo "image sizes (uncompressed): $(echo "$sizes" | tr -s ' ' | tr '\n' ';' | sed 's/;$//; s/;/; /g')"
step "all image checks passed"
