#!/usr/bin/env python3
"""An example program for key-rotator's exec sink: keeps each credential in a folder.

Usage: folder-sink.py FOLDER VERB [CREDENTIAL]

    ROTATOR_SINK=exec
    ROTATOR_SINK_EXEC_COMMAND="python3 /opt/key-rotator/folder-sink.py /var/lib/keys"

The rotator adds the verb and the credential, and names the workspace in the environment
(ROTATOR_WORKSPACE). Each workspace has a subfolder of its own, WS (the workspace's name,
encoded as NAME is below), so two workspaces that both have a credential `billing` never share
a file:

    put-secret CREDENTIAL    the secret on standard input (no newline) -> FOLDER/WS/NAME.secret
    put-metadata CREDENTIAL  one JSON object on standard input         -> FOLDER/WS/NAME.meta.json
    get CREDENTIAL           prints {"metadata": OBJECT or null, "secret_sha256": HEX or null}
    list                     prints a JSON array of the credentials with a NAME.meta.json in WS
    history-get CREDENTIAL   prints the rotation history kept in FOLDER/WS/NAME.history.json
                             (a JSON object), or null when there is none
    history-put CREDENTIAL   the rotation history (a JSON object) on standard input -> the same

NAME is the credential percent-encoded (every byte outside A-Za-z0-9 and -_. as %XX, and a
leading dot as %2E), so each credential has its own files whatever characters it holds.
Files are created 0600 (folders 0700 when this creates them) and replaced atomically: a
temporary file in the same folder, written, fsynced, renamed over the old one, then the folder
fsynced. A call killed half-way leaves the old file whole (and at most a temporary
``.NAME...tmp-...`` file), never a half-written one.

Earlier versions of this program kept every credential directly in FOLDER, whatever the
workspace. Finding such files (NAME.secret or NAME.meta.json right in FOLDER), it refuses every
call (exit 1) rather than start again empty in FOLDER/WS while consumers still read the old
files: move them into FOLDER/WS (WS is `default` for a rotator without a workspaces file,
else the workspace's name there) and point the consumers at the new place.

Exit status: 0 done, 1 failed (the reason on standard error), 2 usage error (ROTATOR_WORKSPACE
unset included: set it to call the program by hand). The secret is never printed. Python 3
standard library only; of the environment only ROTATOR_WORKSPACE is read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import sys
import urllib.parse

SECRET_SUFFIX = ".secret"  # noqa: S105 - a file name, not a password
META_SUFFIX = ".meta.json"
HISTORY_SUFFIX = ".history.json"
# NAME_MAX is 255; leave room for the temporary name's prefix and suffix.
MAX_NAME = 255 - len(".") - len(HISTORY_SUFFIX) - len(".tmp-") - 16
# A key or a metadata document is well under this; more is not ours.
MAX_INPUT = 64 * 1024
USAGE = (
    "usage: ROTATOR_WORKSPACE=WS folder-sink.py FOLDER "
    "{put-secret,put-metadata,get,history-get,history-put} CREDENTIAL"
    " | FOLDER list"
)


class FailureError(Exception):
    """A reason to exit 1, printed on standard error."""


def stem(credential: str, what: str = "credential") -> str:
    name = urllib.parse.quote(credential, safe="-_.")
    if name.startswith("."):
        # A leading dot is encoded too: names starting with one are temporary (or hidden).
        name = "%2E" + name[1:]
    if len(name) > MAX_NAME:
        raise FailureError(f"the {what}'s file name would be longer than {MAX_NAME} characters")
    return name


def workspace_folder(root: str, workspace: str) -> str:
    """FOLDER/WS, once FOLDER is known to hold no credential of the earlier, shared layout."""
    try:
        entries = os.listdir(root)
    except FileNotFoundError:
        entries = []
    shared = sorted(
        entry
        for entry in entries
        if not entry.startswith(".")
        and entry.endswith((SECRET_SUFFIX, META_SUFFIX))
        and os.path.isfile(os.path.join(root, entry))
    )
    if shared:
        raise FailureError(
            f"{root} holds credentials of the earlier layout ({shared[0]}, ...) that every "
            f"workspace shared: move them into {os.path.join(root, stem(workspace, 'workspace'))}"
            " and point their consumers there"
        )
    return os.path.join(root, stem(workspace, "workspace"))


def read_file(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def atomic_write(folder: str, name: str, data: bytes) -> None:
    # Both levels private: makedirs gives only the last one the mode.
    os.makedirs(os.path.dirname(folder), mode=0o700, exist_ok=True)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    target = os.path.join(folder, name)
    temporary = os.path.join(folder, f".{name}.tmp-{secrets.token_hex(8)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def read_input() -> bytes:
    data = sys.stdin.buffer.read(MAX_INPUT + 1)
    if len(data) > MAX_INPUT:
        raise FailureError(f"standard input is larger than {MAX_INPUT} bytes")
    return data


def put_secret(folder: str, credential: str) -> None:
    data = read_input()
    if not data:
        raise FailureError("no secret on standard input")
    atomic_write(folder, stem(credential) + SECRET_SUFFIX, data)


def put_document(folder: str, name: str) -> None:
    """Store the JSON object on standard input as FOLDER/NAME."""
    try:
        document = json.loads(read_input().decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise FailureError("standard input is not UTF-8 JSON") from None
    if not isinstance(document, dict):
        raise FailureError("standard input is not a JSON object")
    data = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()
    atomic_write(folder, name, data)


def put_metadata(folder: str, credential: str) -> None:
    put_document(folder, stem(credential) + META_SUFFIX)


def get(folder: str, credential: str) -> None:
    name = stem(credential)
    raw_meta = read_file(os.path.join(folder, name + META_SUFFIX))
    metadata = None
    if raw_meta is not None:
        try:
            metadata = json.loads(raw_meta.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise FailureError(f"{name}{META_SUFFIX} is not UTF-8 JSON") from None
        if not isinstance(metadata, dict):
            raise FailureError(f"{name}{META_SUFFIX} does not hold a JSON object")
    raw_secret = read_file(os.path.join(folder, name + SECRET_SUFFIX))
    digest = None if raw_secret is None else hashlib.sha256(raw_secret).hexdigest()
    json.dump({"metadata": metadata, "secret_sha256": digest}, sys.stdout)
    sys.stdout.write("\n")


def history_get(folder: str, credential: str) -> None:
    raw = read_file(os.path.join(folder, stem(credential) + HISTORY_SUFFIX))
    if raw is None:
        sys.stdout.write("null\n")
        return
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise FailureError(f"{stem(credential)}{HISTORY_SUFFIX} is not UTF-8 JSON") from None
    json.dump(document, sys.stdout)
    sys.stdout.write("\n")


def history_put(folder: str, credential: str) -> None:
    put_document(folder, stem(credential) + HISTORY_SUFFIX)


def list_credentials(folder: str) -> None:
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        names = []
    credentials = sorted(
        urllib.parse.unquote(name.removesuffix(META_SUFFIX))
        for name in names
        if name.endswith(META_SUFFIX) and not name.startswith(".")
    )
    json.dump(credentials, sys.stdout)
    sys.stdout.write("\n")


def main(argv: list[str]) -> int:
    verbs = {
        "put-secret": put_secret,
        "put-metadata": put_metadata,
        "get": get,
        "history-get": history_get,
        "history-put": history_put,
    }
    workspace = os.environ.get("ROTATOR_WORKSPACE", "")
    if len(argv) == 3 and argv[1] in verbs and argv[2]:
        root, verb, credential = argv
    elif len(argv) == 2 and argv[1] == "list":
        (root, verb), credential = argv, ""
    else:
        sys.stderr.write(USAGE + "\n")
        return 2
    if not workspace:
        # Never guess: a guess would put two workspaces' credentials in one place.
        sys.stderr.write("folder-sink: ROTATOR_WORKSPACE is not set\n" + USAGE + "\n")
        return 2
    folder = root
    try:
        folder = workspace_folder(root, workspace)
        if verb == "list":
            list_credentials(folder)
        else:
            verbs[verb](folder, credential)
    except FailureError as exc:
        sys.stderr.write(f"folder-sink: {exc}\n")
        return 1
    except OSError as exc:
        sys.stderr.write(f"folder-sink: {exc.filename or folder}: {exc.strerror}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
