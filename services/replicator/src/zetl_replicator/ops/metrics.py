"""Live figures of a running replicator, served as Prometheus text on /metrics and /healthz
(by ``zetl.http.serve_metrics``)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

STALL_SECONDS = 60.0  # /healthz fails when the apply loop has not moved for this long


@dataclass
class Metrics:
    rows_applied: Counter[str] = field(default_factory=Counter)
    transactions_applied: int = 0
    batches_committed: int = 0
    streamed_applied_live: int = 0  # in-progress transactions applied as they arrived
    streamed_spooled: int = 0  # in-progress transactions spooled until their commit
    reconnects: int = 0
    applied_lsn: int = 0
    received_lsn: int = 0
    lag_seconds: float = 0.0  # measured at the last commit (0 once caught up with the source)
    # Source commit time of the oldest transaction received but not yet committed to the
    # replica (None: nothing pending): the lag grows from it while a batch is applied.
    pending_since: datetime | None = None
    # svv_integration.state: PendingDbConnectState, SchemaDiscoveryState, CdcRefreshState,
    # ErrorState
    integration_state: str = "PendingDbConnectState"
    tables_failed: int = 0  # tables whose changes the warehouse refused (Failed)
    # Source commit times of the newest transaction received from the stream (detected) and
    # handed to the warehouse in a batch (shipped); svv_integration and CloudWatch show them.
    detected_commit_time: datetime | None = None
    shipped_commit_time: datetime | None = None
    applied_commit_time: datetime | None = None
    # The replica's table counts, as the monitor last read them (CloudWatch's two gauges).
    tables_replicated: int = 0
    tables_failed_replication: int = 0
    auto_remediations: int = 0  # re-copies AUTO_REMEDIATION started
    first_applied_lsn: int = 0  # where this process started applying (bytes transferred since)
    streaming: bool = False
    heartbeat: float = field(default_factory=time.monotonic)
    last_error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def beat(self) -> None:
        self.heartbeat = time.monotonic()

    def current_lag(self) -> float:
        """Seconds the replica is behind the source now."""
        pending = self.pending_since
        if pending is None:
            return self.lag_seconds
        return max(self.lag_seconds, (datetime.now(UTC) - pending).total_seconds())

    def data_transferred(self) -> int:
        """WAL bytes this process applied to the replica (IntegrationDataTransferred)."""
        if not self.first_applied_lsn:
            return 0
        return max(0, self.applied_lsn - self.first_applied_lsn)

    def healthy(self) -> bool:
        return self.streaming and time.monotonic() - self.heartbeat < STALL_SECONDS

    def render(self) -> str:
        with self.lock:
            lines = [
                "# HELP zetl_replicator_rows_applied_total Rows changed in the replica, per table.",
                "# TYPE zetl_replicator_rows_applied_total counter",
            ]
            lines += [
                f'zetl_replicator_rows_applied_total{{table="{name}"}} {count}'
                for name, count in sorted(self.rows_applied.items())
            ]
            gauges = {
                "transactions_applied_total": ("counter", self.transactions_applied),
                "batches_committed_total": ("counter", self.batches_committed),
                "streamed_live_total": ("counter", self.streamed_applied_live),
                "streamed_spooled_total": ("counter", self.streamed_spooled),
                "reconnects_total": ("counter", self.reconnects),
                "applied_lsn": ("gauge", self.applied_lsn),
                "received_lsn": ("gauge", self.received_lsn),
                "lag_bytes": ("gauge", max(0, self.received_lsn - self.applied_lsn)),
                "lag_seconds": ("gauge", round(self.current_lag(), 6)),
                "tables_apply_failed": ("gauge", self.tables_failed),
                "streaming": ("gauge", int(self.streaming)),
            }
            cloudwatch = self._cloudwatch()
        for name, (kind, value) in gauges.items():
            lines += [f"# TYPE zetl_replicator_{name} {kind}", f"zetl_replicator_{name} {value}"]
        for name, (kind, help_text, value) in cloudwatch.items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value}"]
        return "\n".join(lines) + "\n"

    def _cloudwatch(self) -> dict[str, tuple[str, str, float | int]]:
        """AWS's zero-ETL CloudWatch metrics under their own names (Redshift Management Guide,
        "Metrics for zero-ETL integrations"), so alarms written against them read the same
        figures here: the lag svv_integration.current_lag shows, in milliseconds."""
        return {
            "IntegrationLag": (
                "gauge",
                "Milliseconds the target is behind the source (svv_integration.current_lag).",
                round(self.current_lag() * 1000),
            ),
            "IntegrationNumTablesReplicated": (
                "gauge",
                "Tables in state Synced.",
                self.tables_replicated,
            ),
            "IntegrationNumTablesFailedReplication": (
                "gauge",
                "Tables in state Failed.",
                self.tables_failed_replication,
            ),
            "IntegrationDataTransferred": (
                "counter",
                "WAL bytes applied to the target by this replicator.",
                self.data_transferred(),
            ),
            "IntegrationLatestDetectedChange": (
                "gauge",
                "Unix time of the newest source commit received (0: none yet).",
                _epoch(self.detected_commit_time),
            ),
            "IntegrationLatestAppliedChange": (
                "gauge",
                "Unix time of the newest source commit applied to the target (0: none yet).",
                _epoch(self.applied_commit_time),
            ),
            "IntegrationAutoRemediationTriggered": (
                "counter",
                "Re-copies started by AUTO_REMEDIATION.",
                self.auto_remediations,
            ),
        }


def _epoch(moment: datetime | None) -> float:
    return 0 if moment is None else round(moment.timestamp(), 3)
