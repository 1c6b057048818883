"""What a load did: per-entity counts (the count identity) and the data issues it found."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# Issues listed in the report (memory stays flat on huge, messy exports); the database has all.
REPORT_ISSUE_LIMIT = 10_000


@dataclass
class EntityCounts:
    """Rows of one export file: read = loaded + merged + quarantined, always.

    ``inserted``/``updated``/``unchanged`` split the loaded rows by their effect on the database
    (a second load of the same files inserts and updates nothing).
    """

    file: str
    read: int = 0
    loaded: int = 0
    merged: int = 0
    quarantined: int = 0
    inserted: int = 0
    updated: int = 0

    @property
    def unchanged(self) -> int:
        return self.loaded - self.inserted - self.updated

    @property
    def balanced(self) -> bool:
        return self.read == self.loaded + self.merged + self.quarantined

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "unchanged": self.unchanged, "balanced": self.balanced}


@dataclass
class LoadReport:
    load_run_id: int
    source_dir: str
    entities: dict[str, EntityCounts] = field(default_factory=dict)
    # Rows per table after the load (the whole database, not just this load).
    totals: dict[str, int] = field(default_factory=dict)
    # The first REPORT_ISSUE_LIMIT issues, in file and line order; all of them are in
    # zetl_load.data_issue, and issue_counts counts all of them.
    issues: list[dict[str, Any]] = field(default_factory=list)
    issue_counts: dict[str, int] = field(default_factory=dict)
    # Wall seconds per phase of the load, for operators and the benchmark.
    seconds: dict[str, float] = field(default_factory=dict)
    # True when this export had been loaded before (load_run_id is that run) and nothing ran.
    skipped_as_loaded: bool = False

    @property
    def quarantined(self) -> int:
        return sum(counts.quarantined for counts in self.entities.values())

    @property
    def balanced(self) -> bool:
        return all(counts.balanced for counts in self.entities.values())

    @property
    def issue_total(self) -> int:
        return sum(self.issue_counts.values())

    @property
    def status(self) -> str:
        if self.skipped_as_loaded:
            return "skipped_already_loaded"
        return "quarantined_rows" if self.quarantined else "ok"

    def as_dict(self) -> dict[str, Any]:
        return {
            "load_run_id": self.load_run_id,
            "source_dir": self.source_dir,
            "status": self.status,
            "balanced": self.balanced,
            "entities": {name: counts.as_dict() for name, counts in self.entities.items()},
            "totals": self.totals,
            "issue_counts": self.issue_counts,
            "seconds": self.seconds,
            "issues_listed": len(self.issues),
            "issues_total": self.issue_total,
            "issues": self.issues,
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.as_dict(), indent=2, default=str) + "\n", encoding="utf-8")
