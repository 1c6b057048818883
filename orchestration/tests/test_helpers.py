"""The DAG's helpers on their own: the gate's verdict and reasons, the run record's rules."""

from __future__ import annotations

import psycopg2
import pytest
from zetl_orchestration import health, runlog
from zetl_orchestration.health import ReplicationHealth, TableHealth


def _tables(*states: str) -> list[TableHealth]:
    return [TableHealth("public", f"t{i}", s, None) for i, s in enumerate(states)]


def test_a_synced_fresh_replica_passes_the_gate() -> None:
    health.check(ReplicationHealth(_tables("Synced", "Synced"), 2.0, "views"), 900)


def test_the_gate_names_every_reason_at_once() -> None:
    tables = [
        TableHealth("public", "customer", "Synced", None),
        TableHealth("public", "orders", "Failed", "no primary key"),
        TableHealth("public", "game", "ResyncRequired", None),
    ]
    state = ReplicationHealth(tables, 1234.0, "views", integration_state="ErrorState")
    with pytest.raises(health.ReplicationGateError) as raised:
        health.check(state, 900)
    assert str(raised.value) == (
        "replication gate (views): the integration is in ErrorState; 2 of 3 tables not Synced:"
        " public.orders Failed (no primary key), public.game ResyncRequired;"
        " replication lag 1234 s is over the bound of 900 s (ZETL_MAX_LAG_SECONDS)"
    )


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (ReplicationHealth([], 0.0, "views"), "no replicated tables"),
        (ReplicationHealth(_tables("Synced"), None, "views"), "recorded no progress"),
    ],
)
def test_nothing_replicated_is_not_healthy(state: ReplicationHealth, reason: str) -> None:
    with pytest.raises(health.ReplicationGateError, match=reason):
        health.check(state, 900)


def _record(url: str, run_id: str) -> tuple[object, ...]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT outcome, reason, finished_at IS NOT NULL"
                " FROM zetl_orchestration.dag_run WHERE dag_id = 'd' AND run_id = %s",
                (run_id,),
            )
            rows = cur.fetchall()
    finally:
        conn.close()
    assert len(rows) == 1
    return tuple(rows[0])


@pytest.mark.docker
def test_the_run_record_keeps_the_first_failure(warehouse_url: str) -> None:
    runlog.record_start(warehouse_url, "d", "r1")
    assert _record(warehouse_url, "r1") == ("running", None, False)
    runlog.record_failure_reason(warehouse_url, "d", "r1", "gate: lag")
    runlog.record_failure_reason(warehouse_url, "d", "r1", "later: a consequence")
    runlog.record_end(warehouse_url, "d", "r1", runlog.FAILED, "failed: gate, later")
    assert _record(warehouse_url, "r1") == ("failed", "gate: lag", True)
    # Cleared and rerun: it starts afresh and succeeds without a reason.
    runlog.record_start(warehouse_url, "d", "r1")
    runlog.record_end(warehouse_url, "d", "r1", runlog.SUCCESS, None)
    assert _record(warehouse_url, "r1") == ("success", None, True)


@pytest.mark.docker
def test_an_end_without_a_recorded_start_is_still_recorded(warehouse_url: str) -> None:
    runlog.record_end(warehouse_url, "d", "r2", runlog.FAILED, "failed: record_start")
    assert _record(warehouse_url, "r2") == ("failed", "failed: record_start", True)
