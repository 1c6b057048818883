"""A second run over an export already loaded (every `docker compose up` runs the loader) must
not undo what happened since: the export is recognised by its checksum and skipped; only
``--reload`` applies it again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zetl_loader.pipeline import run_load

from .conftest import VALID_ROWS, Conn, ExportWriter, fetch, scalar
from .test_cli import zetl
from .test_players_export import players_export

pytestmark = pytest.mark.docker

# What the generator does to a player after the sample load: erases them, decides their KYC.
LIVE_CHANGES = (
    "UPDATE customer SET display_name = NULL, email = NULL WHERE customer_code = 'CUST-1';"
    " UPDATE customer SET kyc_status = 'approved', kyc_approved_at = now()"
    " WHERE customer_code = 'CUST-2'"
)
PLAYERS = (
    "SELECT customer_code, display_name, email, kyc_status FROM customer ORDER BY customer_code"
)


def test_an_export_loaded_before_is_skipped_and_live_changes_survive(
    db_url: str, db: Conn, tmp_path: Path
) -> None:
    directory = players_export(tmp_path / "players")
    first = run_load(db_url, directory)
    runs = scalar(db, "SELECT count(*) FROM zetl_load.load_run")
    with db.cursor() as cur:
        cur.execute(LIVE_CHANGES)
    live = fetch(db, PLAYERS)

    second = run_load(db_url, directory)

    assert second.skipped_as_loaded and second.load_run_id == first.load_run_id
    assert second.as_dict()["status"] == "skipped_already_loaded"
    assert fetch(db, PLAYERS) == live
    assert live[0][1:3] == (None, None) and live[1][3] == "approved"
    assert scalar(db, "SELECT count(*) FROM zetl_load.load_run") == runs  # nothing written


def test_reload_applies_the_same_export_again_on_purpose(
    db_url: str, db: Conn, tmp_path: Path
) -> None:
    directory = players_export(tmp_path / "players")
    run_load(db_url, directory)
    before = fetch(db, PLAYERS)
    with db.cursor() as cur:
        cur.execute(LIVE_CHANGES)

    again = run_load(db_url, directory, reload=True)

    assert not again.skipped_as_loaded
    assert fetch(db, PLAYERS) == before  # the export's values win: that is what --reload means
    assert scalar(db, "SELECT count(DISTINCT export_checksum) FROM zetl_load.load_run") == 1


def test_a_changed_file_is_a_new_export(db_url: str, db: Conn, export: ExportWriter) -> None:
    run_load(db_url, export())
    changed = run_load(db_url, export({"publisher.csv": ["P1,Alpha Games,CA", "P2,Beta Soft,GB"]}))
    assert not changed.skipped_as_loaded
    assert changed.entities["publisher"].updated == 1
    assert scalar(db, "SELECT count(DISTINCT export_checksum) FROM zetl_load.load_run") == 2


def test_the_cli_skips_reloads_and_accepts_quarantine_only_when_asked(
    db_url: str, export: ExportWriter, tmp_path: Path
) -> None:
    rows = {"transaction_detail.csv": [*VALID_ROWS["transaction_detail.csv"], "T1,3,G1"]}
    directory = str(export(rows))
    report_path = tmp_path / "report.json"

    bare = zetl(db_url, "load", directory)
    assert bare.returncode == 1, bare.stderr  # quarantined rows: the bare command says so

    skipped = zetl(db_url, "load", directory, "--report", str(report_path))
    assert skipped.returncode == 0, skipped.stderr
    assert "export already loaded; skipped" in skipped.stderr
    assert json.loads(report_path.read_text())["status"] == "skipped_already_loaded"

    reloaded = zetl(db_url, "load", directory, "--reload")
    assert reloaded.returncode == 1, reloaded.stderr
    accepted = zetl(db_url, "load", directory, "--reload", "--accept-quarantine")
    assert accepted.returncode == 0, accepted.stderr
    assert "rows were quarantined" in accepted.stderr
