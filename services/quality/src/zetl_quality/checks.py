"""The checkpoints and their checks, as data: no great_expectations import here.

Each check is one great_expectations expectation (its class name and arguments) and the same
check as plain SQL (``violations_sql``: the rows that break it). The expectation is what a
checkpoint evaluates and Data Docs show; the SQL gives a failing check's sample rows in the
report and is the baseline the benchmark times the checkpoint against.

``{batch}`` in a query stands for the table the check's batch reads (great_expectations
substitutes it with an aliased subquery, so a query that needs its own alias wraps it:
``(SELECT * FROM {batch}) AS c``); literal braces are doubled.

Where a rule already exists elsewhere it is reused, not restated: keys, references and CHECK
constraints come from the source model (``zetl.schema.models``), the business rules from
``zetl.schema.rules`` (the queries ``zetl generate check`` runs), the marts' grain, keys and
sign rules from their dbt YAML through dbt's manifest (``zetl_quality.marts``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from zetl.integration import TableState

if TYPE_CHECKING:
    from zetl_quality.marts import Sign


class Target(StrEnum):
    LOCAL = "local"
    AWS = "aws"


class Datasource(StrEnum):
    SOURCE = "source"  # SOURCE_DATABASE_URL: the RDS instance or its stand-in
    WAREHOUSE = "warehouse"  # WAREHOUSE_DATABASE_URL's database (dev), or Redshift's on aws


def replica_schema(target: Target, replica_database: str = "raw_transactions") -> str:
    """How the warehouse database reads the replica's ``public``: through postgres_fdw's
    import ``<replica>_public`` locally (zetl transform sets it up), by three-part names on
    Redshift."""
    if target is Target.AWS:
        return f"{replica_database}.public"
    return f"{replica_database}_public"


RESULTS_SCHEMA = "zetl_dq"
PARITY_TABLE = f"{RESULTS_SCHEMA}.replica_parity"


@dataclass(frozen=True)
class Check:
    name: str  # unique within its checkpoint; what a report and the results table name
    asset: str  # schema.table (or a named query) the expectation's batch reads
    expectation: str  # great_expectations.expectations class name
    kwargs: Mapping[str, Any]
    violations_sql: str  # the same check in plain SQL: the rows that break it
    description: str = ""

    def plain_sql(self) -> str:
        """``violations_sql`` runnable as it is: ``{batch}`` replaced by the asset's table."""
        return self.violations_sql.format(batch=self.asset)


@dataclass(frozen=True)
class Asset:
    name: str
    datasource: Datasource
    table: str | None = None  # schema.table
    query: str | None = None  # a query asset instead of a table


# Evidence a checkpoint gathers before it runs: (run id, warehouse connection, environment).
Prepare = Callable[[str, Any, Mapping[str, str] | None], None]


@dataclass(frozen=True)
class CheckpointSpec:
    """A checkpoint and what it needs: the runner reads these fields, never the name."""

    name: str
    description: str
    # (target, replica database) -> the assets and checks
    build: Callable[[Target, str], tuple[list[Asset], list[Check]]] = field(repr=False)
    needs_source: bool = False  # it reads SOURCE_DATABASE_URL (a datasource, or its evidence)
    # Where its checks' tables are: a failing check's sample rows are read there.
    checks_read: Datasource = Datasource.WAREHOUSE
    # Why it cannot run on AWS, when it cannot.
    local_only: str | None = None
    prepare: Prepare | None = field(default=None, repr=False)


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _unexpected_rows(
    name: str, asset: str, query: str, description: str, *, raw: bool = False
) -> Check:
    """A check written as SQL: passes when ``query`` returns no row. ``raw`` queries carry no
    ``{batch}`` placeholder and may hold braces (they are escaped)."""
    template = _escape(query) if raw else query
    return Check(
        name=name,
        asset=asset,
        expectation="ExpectNoViolatingRows",  # zetl_quality.expectations
        kwargs={"unexpected_rows_query": template, "description": description},
        violations_sql=template,
        description=description,
    )


def _unique(name: str, asset: str, columns: tuple[str, ...], description: str) -> Check:
    cols = ", ".join(columns)
    not_null = " AND ".join(f"{c} IS NOT NULL" for c in columns)
    if len(columns) == 1:
        # Like a UNIQUE constraint, NULLs are not values: the single-column expectation skips
        # them, and so does the plain SQL.
        return Check(
            name,
            asset,
            "ExpectColumnValuesToBeUnique",
            {"column": columns[0]},
            f"SELECT {cols}, count(*) FROM {{batch}} WHERE {not_null} GROUP BY {cols}"
            " HAVING count(*) > 1",
            description,
        )
    # Several columns: great_expectations' ExpectCompoundColumnsToBeUnique joins the table to
    # its own grouped counts, once more for each of its result lists: several times the cost
    # of this GROUP BY on a large mart, which as a counted SQL rule costs what the plain check
    # costs.
    return _unexpected_rows(
        name,
        asset,
        f"SELECT {cols}, count(*) FROM {{batch}} GROUP BY {cols} HAVING count(*) > 1",
        description,
    )


# --- source_integrity --------------------------------------------------------------------


def source_integrity(target: Target, replica_database: str) -> tuple[list[Asset], list[Check]]:
    from sqlalchemy import CheckConstraint, ForeignKeyConstraint, UniqueConstraint

    from zetl.schema.models import Base
    from zetl.schema.rules import RULES

    del target, replica_database  # the source is the same Postgres on both targets
    tables = [t for t in Base.metadata.sorted_tables if t.schema is None]
    assets = [Asset(t.name, Datasource.SOURCE, table=f"public.{t.name}") for t in tables]
    checks: list[Check] = []
    for table in tables:
        asset = f"public.{table.name}"
        keys = [tuple(c.name for c in table.primary_key.columns)]
        keys += [
            tuple(c.name for c in con.columns)
            for con in table.constraints
            if isinstance(con, UniqueConstraint) and not isinstance(con, type(table.primary_key))
        ]
        # A key that contains another one (id, type, currency) is unique whenever that one is.
        keys = [k for k in keys if not any(o != k and set(o) <= set(k) for o in keys)]
        for key in sorted(keys):
            checks.append(
                _unique(
                    f"unique {table.name}({', '.join(key)})",
                    asset,
                    key,
                    f"no two {table.name} rows share {', '.join(key)}",
                )
            )
        fks = [c for c in table.constraints if isinstance(c, ForeignKeyConstraint)]
        for fk in sorted(fks, key=lambda c: [e.parent.name for e in c.elements]):
            child = [e.parent.name for e in fk.elements]
            parent = [e.column.name for e in fk.elements]
            target_table = fk.elements[0].column.table.name
            present = " AND ".join(f"c.{col} IS NOT NULL" for col in child)
            joined = " AND ".join(f"p.{p} = c.{c}" for c, p in zip(child, parent, strict=True))
            checks.append(
                _unexpected_rows(
                    f"reference {table.name}({', '.join(child)})"
                    f" -> {target_table}({', '.join(parent)})",
                    asset,
                    f"SELECT {', '.join('c.' + c for c in child)}"
                    " FROM (SELECT * FROM {batch}) AS c"
                    f" WHERE {present} AND NOT EXISTS"
                    f" (SELECT 1 FROM public.{target_table} p WHERE {joined})",
                    f"every {table.name} row's {', '.join(child)} resolves to a {target_table}",
                )
            )
        ck = [c for c in table.constraints if isinstance(c, CheckConstraint)]
        for con in sorted(ck, key=lambda c: str(c.name)):
            short = str(con.name).removeprefix(f"ck_{table.name}_")
            expression = _escape(str(con.sqltext))
            checks.append(
                _unexpected_rows(
                    f"check {table.name}.{short}",
                    asset,
                    f"SELECT id FROM {{batch}} WHERE NOT ({expression})",
                    f"{table.name}: {con.sqltext}",
                )
            )
    for rule in RULES:
        # The rules read several tables by name; their batch is nominal (the first table).
        checks.append(
            _unexpected_rows(
                f"rule {rule.name}",
                "public.customer",
                rule.violations_sql.strip(),
                rule.description,
                raw=True,
            )
        )
    return assets, checks


# --- replica_parity ----------------------------------------------------------------------

PARITY_LATEST = (
    f"SELECT * FROM {PARITY_TABLE} WHERE run_id ="
    f" (SELECT run_id FROM {PARITY_TABLE} ORDER BY checked_at DESC LIMIT 1)"
)


def _parity_snapshot(run_id: str, warehouse: Any, environ: Mapping[str, str] | None) -> None:
    """The evidence replica_parity checks: source and replica compared (zetl verify), one row
    per table in PARITY_TABLE."""
    import logging

    from zetl_quality.parity import snapshot
    from zetl_replicator.config import ReplicatorConfig

    log = logging.getLogger("zetl.quality")
    log.info("comparing source and replica at a consistent point (zetl verify)")
    tables = snapshot(ReplicatorConfig.from_env(environ), run_id, warehouse)
    log.info("parity snapshot stored", extra={"tables": tables})


def replica_parity(target: Target, replica_database: str) -> tuple[list[Asset], list[Check]]:
    del target, replica_database  # verify knows the replica; the evidence is in dev
    asset = "replica_parity_latest"
    latest = f"({PARITY_LATEST}) AS latest"
    checks = [
        Check(
            "every table Synced",
            asset,
            "ExpectColumnValuesToBeInSet",
            {"column": "table_state", "value_set": [TableState.SYNCED.value]},
            f"SELECT table_name, table_state FROM {latest}"
            f" WHERE table_state <> '{TableState.SYNCED}'",
            "every replicated table is Synced",
        ),
        Check(
            "row counts equal the source",
            asset,
            "ExpectColumnPairValuesToBeEqual",
            {
                "column_A": "source_rows",
                "column_B": "replica_rows",
                "ignore_row_if": "either_value_is_missing",
            },
            f"SELECT table_name, source_rows, replica_rows FROM {latest}"
            " WHERE source_rows <> replica_rows",
            "per table, the replica's row count equals the source's at one consistent point",
        ),
        Check(
            "row checksums equal the source",
            asset,
            "ExpectColumnPairValuesToBeEqual",
            {
                "column_A": "source_checksum",
                "column_B": "replica_checksum",
                "ignore_row_if": "either_value_is_missing",
            },
            f"SELECT table_name, source_checksum, replica_checksum FROM {latest}"
            " WHERE source_checksum <> replica_checksum",
            "per table, the sum of a hash of every row equals the source's at the same point",
        ),
        Check(
            "every Synced table on both sides",
            asset,
            "ExpectColumnValuesToBeNull",
            {"column": "missing"},
            f"SELECT table_name, missing FROM {latest} WHERE missing IS NOT NULL",
            "no Synced table is missing from the source or the replica",
        ),
        Check(
            "tables compared",
            asset,
            "ExpectTableRowCountToBeBetween",
            {"min_value": 1},
            f"SELECT 'no table' WHERE NOT EXISTS (SELECT 1 FROM {latest})",
            "the integration replicates at least one table",
        ),
    ]
    return [Asset(asset, Datasource.WAREHOUSE, query=PARITY_LATEST)], checks


# --- marts -------------------------------------------------------------------------------


def _sign(mart: str, relation: str, grain: tuple[str, ...], sign: Sign) -> Check:
    """A sign rule: the column's values stay within its min / max."""
    column, low, high = sign.column, sign.low, sign.high
    breaks = [f"{column} < {low}"] if low is not None else []
    breaks += [f"{column} > {high}"] if high is not None else []
    if low is not None and high is not None:
        rule, meaning = f"between {low} and {high}", f"between {low} and {high}"
    elif low is not None:
        rule = f">= {low}"
        meaning = "never negative" if low == 0 else f"never below {low}"
    else:
        rule = f"<= {high}"
        meaning = "never positive" if high == 0 else f"never above {high}"
    return Check(
        f"sign {mart}.{column} {rule}",
        relation,
        "ExpectColumnValuesToBeBetween",
        {"column": column, "min_value": low, "max_value": high},
        f"SELECT {', '.join(grain)}, {column} FROM {{batch}} WHERE {' OR '.join(breaks)}",
        f"{column} is {meaning}",
    )


def marts(target: Target, replica_database: str) -> tuple[list[Asset], list[Check]]:
    """Each mart's grain, sign rules and keys as its dbt YAML declares them (meta
    zetl_quality, read from the manifest: zetl_quality.marts), and the rules of two marts that
    no column property says."""
    from zetl_quality.marts import load_contracts

    contracts = load_contracts()
    replica = replica_schema(target, replica_database)
    assets = [Asset(c.name, Datasource.WAREHOUSE, table=c.relation) for c in contracts]
    checks: list[Check] = []
    for mart in contracts:
        checks.append(
            _unique(
                f"grain {mart.name}({', '.join(mart.grain)})",
                mart.relation,
                mart.grain,
                f"one {mart.name} row per {', '.join(mart.grain)}",
            )
        )
    top = "analytics.player_top_three_deposits"
    for higher, lower in (("top_deposit_1", "top_deposit_2"), ("top_deposit_2", "top_deposit_3")):
        checks.append(
            Check(
                f"top three {higher} >= {lower}",
                top,
                "ExpectColumnPairValuesAToBeGreaterThanB",
                {
                    "column_A": higher,
                    "column_B": lower,
                    "or_equal": True,
                    "ignore_row_if": "either_value_is_missing",
                },
                f"SELECT customer_id, currency, {higher}, {lower} FROM {{batch}}"
                f" WHERE {higher} < {lower}",
                "the three largest deposits are in non-increasing order",
            )
        )
    checks.append(
        _unexpected_rows(
            "top three filled from the left",
            top,
            "SELECT customer_id, currency FROM {batch} WHERE"
            " (top_deposit_1 IS NULL AND top_deposit_2 IS NOT NULL)"
            " OR (top_deposit_2 IS NULL AND top_deposit_3 IS NOT NULL)",
            "a player with fewer than three deposits has nulls only in the last columns",
        )
    )
    for mart in contracts:
        checks.extend(_sign(mart.name, mart.relation, mart.grain, sign) for sign in mart.signs)
    checks.append(
        Check(
            "reconciliation flag present",
            "analytics.transaction_reconciliation",
            "ExpectColumnValuesToNotBeNull",
            {"column": "is_mismatched"},
            "SELECT transaction_id FROM {batch} WHERE is_mismatched IS NULL",
            "every reconciled transaction says whether header and lines disagree",
        )
    )
    for mart in contracts:
        for trace in mart.traces:
            column, table, key = trace.column, trace.table, trace.key
            checks.append(
                _unexpected_rows(
                    f"traceable {mart.name}.{column} -> {table}.{key}",
                    mart.relation,
                    f"SELECT m.{column} FROM (SELECT * FROM {{batch}}) AS m"
                    f" WHERE m.{column} IS NOT NULL"
                    f" AND NOT EXISTS (SELECT 1 FROM {replica}.{table} r"
                    f" WHERE r.{key} = m.{column})",
                    f"every {mart.name}.{column} exists in the replica's {table}.{key}",
                )
            )
    return assets, checks


CHECKPOINTS: dict[str, CheckpointSpec] = {
    spec.name: spec
    for spec in (
        CheckpointSpec(
            "source_integrity",
            "the source: keys unique, references resolved, CHECK rules (signs by type,"
            " net = gross - fee), the business rules",
            source_integrity,
            needs_source=True,
            checks_read=Datasource.SOURCE,
        ),
        CheckpointSpec(
            "replica_parity",
            "the replica: every table Synced; per-table row counts and row checksums equal"
            " the source's at one consistent point (zetl verify)",
            replica_parity,
            needs_source=True,
            local_only="replica_parity compares at the replicator's applied position, which only"
            " the local emulation has; on AWS the integration reports its own state"
            " (SVV_INTEGRATION_TABLE_STATE)",
            prepare=_parity_snapshot,
        ),
        CheckpointSpec(
            "marts",
            "the analytics marts: grain unique, top three ordered, deposit/withdrawal signs,"
            " reconciliation flags present, every key traceable to the replica",
            marts,
        ),
    )
}
