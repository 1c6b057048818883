"""`zetl load` as people run it: exit codes, one-line errors, the JSON report."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import VALID_ROWS, ExportWriter

pytestmark = pytest.mark.docker

REPO_ROOT = Path(__file__).resolve().parents[3]


def zetl(url: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCE_DATABASE_URL")}
    if url is not None:
        env["SOURCE_DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "zetl", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_sample_export_loads_and_writes_its_report(db_url: str, tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    result = zetl(db_url, "load", str(REPO_ROOT / "data" / "raw"), "--report", str(report_path))
    assert result.returncode == 0, result.stderr
    report = json.loads(report_path.read_text())
    assert report["balanced"] is True
    assert report["status"] == "ok"
    for entity in ("publisher", "game", "store_transaction", "store_transaction_line"):
        counts = report["entities"][entity]
        assert counts["read"] == counts["loaded"] + counts["merged"] > 0, entity
    assert report["entities"]["customer"]["loaded"] == 200  # the players file
    assert {"duplicate_merged", "invalid_date", "missing_date", "total_mismatch"} <= set(
        report["issue_counts"]
    )
    issue = report["issues"][0]
    assert set(issue) == {"code", "entity", "source_id", "file", "line", "detail"}


def test_quarantined_rows_exit_1_after_committing_the_rest(
    db_url: str, export: ExportWriter, tmp_path: Path
) -> None:
    rows = {"transaction_detail.csv": [*VALID_ROWS["transaction_detail.csv"], "T1,3,G1"]}
    report_path = tmp_path / "report.json"
    result = zetl(db_url, "load", str(export(rows)), "--report", str(report_path))
    assert result.returncode == 1, result.stderr
    report = json.loads(report_path.read_text())
    assert report["status"] == "quarantined_rows"
    assert report["entities"]["store_transaction_line"]["loaded"] == 4
    assert "Traceback" not in result.stderr


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing_dir", "no such directory"),
        ("missing_column", "missing column(s) platform_fee, net_amount"),
        ("unreachable", "cannot connect to postgresql://zetl:***@127.0.0.1"),
        ("unset", "SOURCE_DATABASE_URL"),
        ("not_migrated", "run `zetl migrate` first"),
    ],
)
def test_usage_errors_exit_2_with_one_clear_line(
    source_url: str, export: ExportWriter, tmp_path: Path, case: str, message: str
) -> None:
    directory = export()
    url: str | None = source_url  # an empty database: never migrated
    if case == "missing_dir":
        directory = tmp_path / "nowhere"
    elif case == "missing_column":
        header = b"transaction_id,line_no,game_ref,publisher_ref,region,platform,gross_amount,x,y"
        (directory / "transaction_detail.csv").write_bytes(header + b"\n")
    elif case == "unreachable":
        url = f"postgresql://zetl:secret@127.0.0.1:{_closed_port()}/db?connect_timeout=2"
    elif case == "unset":
        url = None
    result = zetl(url, "load", str(directory))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert "secret" not in result.stderr
