"""Shared seed and helpers for the emulator's tests (imported by conftest and the tests)."""

from __future__ import annotations

from typing import Any

ADMIN_SECRET = "pm_test_admin_secret_for_acme"
OTHER_SECRET = "pm_test_admin_secret_for_globex"
ACME_ID = "11111111-1111-4111-8111-111111111111"
GLOBEX_ID = "22222222-2222-4222-8222-222222222222"
ADMIN_KEY_ID = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"


def seed() -> dict[str, Any]:
    return {
        "now": "2026-11-27T00:00:00Z",
        "workspaces": [
            {
                "id": ACME_ID,
                "name": "Acme",
                "keys": [
                    {
                        "id": ADMIN_KEY_ID,
                        "name": "rotator-admin",
                        "secret": ADMIN_SECRET,
                        "expires": "2028-01-01T00:00:00Z",
                    }
                ],
            },
            {
                "id": GLOBEX_ID,
                "name": "Globex",
                "keys": [{"name": "rotator-admin", "secret": OTHER_SECRET}],
            },
        ],
    }


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
