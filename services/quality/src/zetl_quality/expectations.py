"""zetl's own expectation class. Importing this module imports great_expectations (seconds):
only ``project`` does, inside ``zetl dq run``."""

from __future__ import annotations

from typing import Any, ClassVar

from great_expectations.expectations.core.unexpected_rows_expectation import (
    UnexpectedRowsExpectation,
)


class ExpectNoViolatingRows(UnexpectedRowsExpectation):
    """``UnexpectedRowsExpectation`` that only counts the rows its query returns.

    The stock class runs every query twice, once to count and once to fetch the rows, so a
    rule over a large table costs two full scans. A checkpoint of dozens of such rules then
    takes twice as long as the rules themselves; the sample rows of a failing rule are fetched
    afterwards by ``zetl dq`` (five of them), only for the rules that fail.
    """

    metric_dependencies: ClassVar[tuple[str, ...]] = ("unexpected_rows_query.row_count",)

    def _validate(
        self,
        metrics: dict[str, Any],
        runtime_configuration: dict[str, Any] | None = None,
        execution_engine: Any = None,
    ) -> dict[str, Any]:
        count = metrics["unexpected_rows_query.row_count"]
        return {"success": count == 0, "result": {"observed_value": count}}
