"""How a dbt build's results become a run's outcome: models, data tests and unit tests."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from zetl_transform.runner import RunOutcome, _count


def result(kind: str, name: str, status: str, message: str | None = None) -> SimpleNamespace:
    node = SimpleNamespace(name=name, resource_type=kind)
    return SimpleNamespace(node=node, status=status, message=message, execution_time=0.1)


def test_unit_tests_are_counted_and_a_failed_one_fails_the_run() -> None:
    run = RunOutcome("r", datetime.now(UTC), "build", selector=None, full_refresh=False)
    _count(
        run,
        SimpleNamespace(
            results=[
                result("model", "daily_revenue", "success"),
                result("unit_test", "top_three_keeps_ties", "pass"),
                result("unit_test", "player_days_are_utc_days", "fail", "actual differs"),
                result("test", "row_rules_daily_revenue", "pass"),
            ]
        ),
    )
    assert (run.models_ok, run.unit_tests_ok, run.tests_failed) == (1, 1, 1)
    assert run.failures == ["player_days_are_utc_days: actual differs"]
