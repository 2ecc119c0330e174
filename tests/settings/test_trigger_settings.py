"""ROTATOR_TRIGGER_TOKEN and ROTATOR_WEBHOOK_SECRET: what serve's trigger endpoints are opened
with. Both are secrets: given directly or as ``_FILE``, never shown, never echoed in a problem."""

from __future__ import annotations

import json
from pathlib import Path

from rotator.settings import REDACTED, parse_settings, redacted
from tests.settings.support import MINIMAL, load, problems

TOKEN = "trigger-t0ken-0123456789"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_unset_by_default() -> None:
    settings = load()
    assert settings.trigger_token is None
    assert settings.webhook_secret is None


def test_both_are_redacted_wherever_the_settings_are_shown() -> None:
    settings = load(ROTATOR_TRIGGER_TOKEN=TOKEN, ROTATOR_WEBHOOK_SECRET=WEBHOOK_SECRET)
    assert settings.trigger_token is not None
    assert settings.trigger_token.get_secret_value() == TOKEN
    effective = redacted(settings)
    assert effective["ROTATOR_TRIGGER_TOKEN"] == REDACTED
    assert effective["ROTATOR_WEBHOOK_SECRET"] == REDACTED
    for secret in (TOKEN, WEBHOOK_SECRET):
        assert secret not in json.dumps(effective)
        assert secret not in repr(settings)


def test_the_token_may_come_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    settings = parse_settings({**MINIMAL, "ROTATOR_TRIGGER_TOKEN_FILE": str(path)})
    assert settings.trigger_token is not None
    assert settings.trigger_token.get_secret_value() == TOKEN


def test_a_short_token_is_refused_without_echoing_it() -> None:
    (problem,) = problems(ROTATOR_TRIGGER_TOKEN="s3cret-short")
    assert problem.startswith("ROTATOR_TRIGGER_TOKEN: must be at least 16 characters")
    assert "s3cret-short" not in problem


def test_a_token_with_white_space_is_refused() -> None:
    (problem,) = problems(ROTATOR_TRIGGER_TOKEN="two words of a token")
    assert problem.startswith("ROTATOR_TRIGGER_TOKEN: ")
    assert "words" not in problem


def test_a_webhook_secret_must_be_whsec_and_base64() -> None:
    for bad in ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_not*base64!"):
        (problem,) = problems(ROTATOR_WEBHOOK_SECRET=bad)
        assert problem.startswith("ROTATOR_WEBHOOK_SECRET: must ")
        assert "whsec_" in problem
        assert not bad.removeprefix("whsec_") or bad.removeprefix("whsec_") not in problem
