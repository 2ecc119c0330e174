"""The rules of serve's trigger endpoints that need no server: the Idempotency-Key store (kept
answers, their lifetime and bound, a key reused for another request), a leak report's body
(never echoed), and that an answer is the very JSON `rotate -o json` prints."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from rotator.render import dump
from rotator.report import PassReport, WorkspaceReport, pass_document
from rotator.rotation import CredentialResult, Outcome, Step
from rotator.triggers import Answer, BadRequestError, IdempotencyKeys, _leak_sha256

SECRET = "pm-key-leaked-0123456789abcdef"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def counting(status: int = 200) -> tuple[list[int], Callable[[], Answer]]:
    calls: list[int] = []

    def work() -> Answer:
        calls.append(1)
        return Answer(status, {"n": len(calls)})

    return calls, work


def test_a_kept_answer_is_given_again_without_doing_the_work() -> None:
    keys = IdempotencyKeys()
    calls, work = counting()
    first, replayed_first = keys.run("k", "body", work)
    again, replayed_again = keys.run("k", "body", work)
    assert (replayed_first, replayed_again) == (False, True)
    assert again == first and len(calls) == 1


def test_a_key_used_for_another_request_is_refused() -> None:
    keys = IdempotencyKeys()
    calls, work = counting()
    keys.run("k", "body", work)
    answer, _ = keys.run("k", "another body", work)
    assert answer.status == 422 and len(calls) == 1


def test_an_answer_that_changed_nothing_is_not_kept() -> None:
    keys = IdempotencyKeys()
    calls, work = counting(status=409)
    keys.run("k", "body", work)
    answer, replayed = keys.run("k", "body", work)
    assert not replayed and answer.status == 409 and len(calls) == 2


def test_answers_expire_and_the_oldest_go_first() -> None:
    clock = Clock()
    keys = IdempotencyKeys(ttl_seconds=60, max_entries=2, clock=clock)
    calls, work = counting()
    keys.run("a", "x", work)
    clock.now = 61
    _, replayed = keys.run("a", "x", work)
    assert not replayed, "kept past its lifetime"
    keys.run("b", "x", work)
    keys.run("c", "x", work)
    _, replayed = keys.run("a", "x", work)
    assert not replayed, "more answers kept than the bound"
    assert len(calls) == 5


def test_a_request_whose_key_is_in_flight_waits_for_its_answer() -> None:
    keys = IdempotencyKeys()
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow() -> Answer:
        calls.append(1)
        started.set()
        release.wait(5)
        return Answer(200, {"n": len(calls)})

    results: list[tuple[Answer, bool]] = []
    first = threading.Thread(target=lambda: results.append(keys.run("k", "b", slow)))
    first.start()
    assert started.wait(5)
    second = threading.Thread(target=lambda: results.append(keys.run("k", "b", slow)))
    second.start()
    release.set()
    first.join(5)
    second.join(5)
    assert len(calls) == 1
    assert sorted(replayed for _, replayed in results) == [False, True]
    assert results[0][0] == results[1][0]


@pytest.mark.parametrize(
    "body",
    [
        {"secret": SECRET, "secret_sha256": "0" * 64},
        {"secret": SECRET, "extra": SECRET},
        {"secret_sha256": SECRET},
        {"secret": [SECRET]},
    ],
)
def test_a_bad_leak_report_never_echoes_the_secret(body: dict[str, object]) -> None:
    with pytest.raises(BadRequestError) as caught:
        _leak_sha256(body)
    assert SECRET not in str(caught.value)


def test_a_leak_report_is_hashed_at_once() -> None:
    digest = hashlib.sha256(SECRET.encode()).hexdigest()
    assert _leak_sha256({"secret": f" {SECRET}\n"}) == digest
    assert _leak_sha256({"secret_sha256": digest.upper()}) == digest


def test_the_answer_is_the_json_rotate_prints() -> None:
    report = PassReport(
        run_id="r1",
        started_at=datetime(2026, 12, 7, 3, 0, 0, 250000, tzinfo=UTC),
        duration_s=1.5,
        workspaces=[
            WorkspaceReport(
                name="default",
                results={
                    "billing": CredentialResult("billing", Outcome.ROTATED, revoked=("k0",)),
                    "crm": CredentialResult(
                        "crm", Outcome.FAILED, failed_step=Step.CREATE, error="500"
                    ),
                },
            )
        ],
    )
    document = pass_document(report)
    body, content_type = Answer(200, document).encoded()
    assert content_type == "application/json"
    assert json.loads(body) == json.loads(dump(document, "json"))
