"""The Vault sink in the contract suite, against a real OpenBao server.

Each test gets a fresh KV v2 mount. The sink under test holds a token with exactly the policy
the README documents (so the suite also proves that policy is enough) and talks to OpenBao
through a loopback proxy that can lose one answer; a second handle (``reopen``) talks to OpenBao
directly. ``forbidden`` holds a token with a read-only policy; ``unavailable`` points at a port
nothing listens on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rotator.models import Secret
from rotator.sinks.vault import VaultSink, path_segment
from tests.servers.openbao import OpenBao, free_port, read_only_policy, sink_policy
from tests.servers.standins import AnswerDroppingProxy
from tests.sinks.backends import Backend

WORKSPACE = "acme"


def make_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    bao: OpenBao = request.getfixturevalue("openbao")
    mount = bao.new_mount()
    bao.put_policy(f"sink-{mount}", sink_policy(mount))
    bao.put_policy(f"read-{mount}", read_only_policy(mount))
    token = bao.new_token([f"sink-{mount}"])
    read_only_token = bao.new_token([f"read-{mount}"])
    proxy = AnswerDroppingProxy(bao.addr)
    opened: list[VaultSink] = []

    def sink_at(addr: str, token: str) -> VaultSink:
        sink = VaultSink(
            addr,
            mount=mount,
            workspace=WORKSPACE,
            token_provider=lambda: Secret(token),
            timeout_seconds=5.0,
        )
        opened.append(sink)
        return sink

    def consumer_reads(credential: str) -> str | None:
        response = bao.request(
            "GET", f"{mount}/data/key-rotator/{WORKSPACE}/{path_segment(credential)}"
        )
        if response.status_code == 404:
            return None
        value = response.json()["data"]["data"].get("api_key")
        return None if value is None else str(value)

    def lose_next_answer() -> None:
        proxy.drop_next_answer(lambda method, _path: method in ("POST", "PUT"))

    def cleanup() -> None:
        for sink in opened:
            sink.close()
        proxy.stop()

    return Backend(
        sink=sink_at(proxy.url, token),
        reopen=lambda: sink_at(bao.addr, token),
        consumer_reads=consumer_reads,
        unavailable=lambda: sink_at(f"http://127.0.0.1:{free_port()}", token),
        forbidden=lambda: sink_at(bao.addr, read_only_token),
        lose_next_answer=lose_next_answer,
        cleanups=[cleanup],
    )
