"""Writes what the model tried (``tests/model/stats.py``) as JSON when the session ends, when
ROTATOR_MODEL_STATS names a file: with how the run was made (profile, examples asked, steps per
example, seed), so that ``scripts/reliability_report.py`` can say what its figures come from."""

from __future__ import annotations

import os

import pytest

from tests.model.stats import STATS, requested_path

#: The slow profile runs the model with OpenBao and moto (test_model_slow.py) instead of the
#: quick one: one module or the other is collected, never one skipped.
collect_ignore = (
    ["test_model.py"]
    if os.environ.get("ROTATOR_MODEL_PROFILE", "") == "slow"
    else ["test_model_slow.py"]
)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = requested_path()
    if path is None:
        return
    from tests.model import test_model  # noqa: PLC0415 - its profile is chosen when imported

    chosen = test_model.TestRotatorModel.settings
    seed = session.config.getoption("hypothesis_seed", None)
    STATS.write(
        path,
        {
            "profile": test_model.PROFILE,
            "max_examples": chosen.max_examples,
            "steps_per_example": chosen.stateful_step_count,
            "derandomized": chosen.derandomize,
            "seed": None if seed is None else str(seed),
            "passed": exitstatus == 0,
        },
    )
