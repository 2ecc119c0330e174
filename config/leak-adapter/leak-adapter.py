#!/usr/bin/env python3
"""An example adapter from a secret scanner's alert to key-rotator's ``POST /v1/leaks``.

Usage: leak-adapter.py [--token-file FILE] URL < ALERT.json

URL is where ``rotator serve`` listens (``http://rotator.key-rotator:8080``); the bearer token is
read from FILE, else from the environment variable TRIGGER_TOKEN (the value of
ROTATOR_TRIGGER_TOKEN). The alert, one JSON object on standard input, is:

- a GitHub secret-scanning alert as its REST API returns it (``gh api
  repos/OWNER/REPO/secret-scanning/alerts/NUMBER``), which carries the secret in ``secret``; or a
  payload with that alert under ``alert`` (the ``secret_scanning_alert`` webhook's own ``alert``
  carries no secret: fetch the alert with the API first);
- a GitGuardian-style incident, with the secret (or its SHA-256) under ``incident``;
- or any object with ``secret`` or ``secret_sha256`` (lowercase or uppercase hex) at the top.

The secret is hashed here and only its SHA-256 is sent: the secret itself never crosses the
network again, and is never printed. What the rotator answers is printed on standard output
(``{"matched": [...]}``: each credential whose current or previous key it is, replaced and
revoked at once), and on standard error a line per match.

Exit status: 0 the report was taken (matched and replaced, or matched nothing), 1 the rotator
answered an error, could not be reached, or could not replace a key it matched (send it again,
and look at its log), 2 usage error or an alert with no secret in it. Python 3 standard library
only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
#: Where a secret may sit in an alert, outermost first.
_PLACES = ((), ("alert",), ("incident",))
TIMEOUT_SECONDS = 120  # the rotator may wait for a pass holding the lock first


class AlertError(Exception):
    """The alert holds no secret this adapter can find (the message never quotes it)."""


def leaked_sha256(alert: object) -> str:
    """The SHA-256 (lowercase hex) of the secret an alert reports."""
    if not isinstance(alert, dict):
        raise AlertError("the alert is not a JSON object")
    for path in _PLACES:
        place: object = alert
        for name in path:
            place = place.get(name) if isinstance(place, dict) else None
        if not isinstance(place, dict):
            continue
        secret = place.get("secret")
        if isinstance(secret, str) and secret.strip():
            return hashlib.sha256(secret.strip().encode()).hexdigest()
        digest = place.get("secret_sha256")
        if isinstance(digest, str) and _SHA256.fullmatch(digest):
            return digest.lower()
    raise AlertError(
        "the alert holds no secret: expected secret or secret_sha256 at the top, under alert "
        "or under incident"
    )


def report(url: str, token: str, secret_sha256: str) -> tuple[int, dict[str, object]]:
    """POST the hash to URL/v1/leaks; the answer's status and JSON body."""
    request = urllib.request.Request(  # noqa: S310 - an http(s) URL ops give
        url.rstrip("/") + "/v1/leaks",
        data=json.dumps({"secret_sha256": secret_sha256}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read())
        except ValueError:
            body = {"error": exc.reason}
        return exc.code, body if isinstance(body, dict) else {"error": str(body)}


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="where rotator serve listens, e.g. http://rotator:8080")
    parser.add_argument("--token-file", type=Path, help="file holding ROTATOR_TRIGGER_TOKEN")
    args = parser.parse_args(argv)
    if not args.url.startswith(("http://", "https://")):
        parser.error("URL must start with http:// or https://")
    token = (
        args.token_file.read_text().strip() if args.token_file else os.environ.get("TRIGGER_TOKEN")
    )
    if not token:
        parser.error("give --token-file FILE or set TRIGGER_TOKEN")
    try:
        digest = leaked_sha256(json.loads(sys.stdin.buffer.read()))
    except ValueError:
        _say("leak-adapter: standard input is not JSON")
        return 2
    except AlertError as exc:
        _say(f"leak-adapter: {exc}")
        return 2
    try:
        status, body = report(args.url, token, digest)
    except OSError as exc:
        _say(f"leak-adapter: cannot reach {args.url}: {exc}")
        return 1
    except ValueError:
        _say(f"leak-adapter: {args.url} answered something that is not JSON")
        return 1
    sys.stdout.write(json.dumps(body, indent=2) + "\n")
    if status != 200:
        _say(f"leak-adapter: the rotator answered {status}: {body.get('error')}")
        return 1
    matched = body.get("matched")
    matches = [m for m in matched if isinstance(m, dict)] if isinstance(matched, list) else []
    left = 0
    for match in matches:
        if match.get("rotated"):
            done = "replaced"
        elif match.get("already_revoked"):
            done = "already revoked, nothing to do"
        else:
            done, left = "NOT replaced (see the rotator's answer and log)", left + 1
        _say(
            f"leak-adapter: matched {match.get('workspace')}/{match.get('credential')} key "
            f"{match.get('key_id')} ({match.get('role')}): {done}"
        )
    if not matches:
        _say("leak-adapter: no credential of the rotator's holds this secret")
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
