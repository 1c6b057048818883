"""AWS's rules for what a user writes, checked without a database: the REFRESH and SET clauses
of ALTER DATABASE ... INTEGRATION, and the data filter's limits. Each test is named after its
rule (docs/replication.md, the rule table)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from zetl.errors import ConfigError
from zetl.integration import TableState
from zetl_replicator.ops.clauses import parse_options, parse_refresh, tables_to_refresh
from zetl_replicator.state.store import TableStatus
from zetl_replicator.sync.datafilter import parse

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _status(name: str, state: TableState, *, apply_failed: bool = False) -> TableStatus:
    return TableStatus("public", name, state, None, None, 0, False, NOW, apply_failed)


STATES = {
    f"public.{s.name}": s
    for s in (
        _status("synced", TableState.SYNCED),
        _status("no_key", TableState.FAILED),
        _status("refused", TableState.FAILED, apply_failed=True),
        _status("waiting", TableState.RESYNC_REQUIRED),
        _status("history", TableState.DROPPED_SOURCE),
    )
}


def test_refresh_remediable_tables_chooses_what_a_refresh_can_fix() -> None:
    kind, names = parse_refresh(["REMEDIABLE", "TABLES"])
    assert (kind, names) == ("remediable", [])
    assert tables_to_refresh(kind, names, STATES) == ["public.refused", "public.waiting"]
    # INERROR takes every Failed table, ALL every table with a source to copy from.
    assert tables_to_refresh("inerror", [], STATES) == [
        "public.no_key",
        "public.refused",
        "public.waiting",
    ]
    assert "public.history" not in tables_to_refresh("all", [], STATES)
    assert parse_refresh(["remediable", "tables", "in", "schema", "public"]) == (
        "remediable",
        ["public"],
    )


def test_refresh_interval_is_bounded_to_awss_0_to_432000_seconds() -> None:
    assert parse_options(["REFRESH_INTERVAL", "432000"]) == {"REFRESH_INTERVAL": 432_000}
    assert parse_options(["REFRESH_INTERVAL", "0"]) == {"REFRESH_INTERVAL": 0}
    with pytest.raises(ConfigError, match="0 to 432000"):
        parse_options(["REFRESH_INTERVAL", "432001"])


def test_auto_remediation_is_an_option_of_alter_database() -> None:
    assert parse_options(["AUTO_REMEDIATION", "=", "TRUE"]) == {"AUTO_REMEDIATION": True}
    with pytest.raises(ConfigError, match="TRUE or FALSE"):
        parse_options(["AUTO_REMEDIATION", "yes"])


def test_history_mode_for_tables_is_refused_with_the_reason() -> None:
    with pytest.raises(ConfigError, match="whole database"):
        parse_options(["HISTORY_MODE", "=", "TRUE", "FOR", "TABLE", "public.t"])


def test_data_filter_of_more_than_99_patterns_is_rejected() -> None:
    ninety_nine = ", ".join(f"include: db.public.t{i}" for i in range(99))
    assert len(parse(ninety_nine).rules) == 99
    with pytest.raises(ConfigError, match="100 patterns: AWS takes at most 99"):
        parse(ninety_nine + ", exclude: db.public.t99")


def test_data_filter_pattern_over_256_characters_is_rejected() -> None:
    name = "t" * (256 - len("db.public."))
    assert parse(f"include: db.public.{name}").rules[0].matches("db", "public", name)
    with pytest.raises(ConfigError, match="257 characters: AWS takes at most 256"):
        parse(f"include: db.public.{name}t")


def test_data_filter_regex_in_the_database_part_is_rejected() -> None:
    assert parse("include: db./^p/.*").replicates("db", "public", "t")  # schema: fine
    assert parse("include: *.public.*").replicates("any", "public", "t")  # wildcard: fine
    with pytest.raises(ConfigError, match="regular expression in the database part"):
        parse("include: /^store/.public.*")
