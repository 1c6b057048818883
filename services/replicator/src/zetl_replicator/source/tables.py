"""What the source's tables look like: their columns, types, keys and replica identity, as
read from its catalog (``catalog``) and as the replica has them (``target``)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from zetl_replicator.source import eligibility
from zetl_replicator.source.eligibility import Ineligibility
from zetl_replicator.source.types import target_type


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type_sql: str  # format_type(): "numeric(12,2)", "character varying(40)"
    type_name: str  # pg_type.typname: "numeric", "varchar"
    not_null: bool

    def target(self) -> ColumnInfo:
        """This column as the replica has it: AWS's Redshift type where Postgres has it."""
        mapped = target_type(self.type_sql, self.type_name)
        return self if mapped == self.type_sql else replace(self, type_sql=mapped)


@dataclass(frozen=True)
class TableInfo:
    schema: str
    name: str
    columns: tuple[ColumnInfo, ...]
    primary_key: tuple[str, ...]
    replica_identity: str = "d"  # pg_class.relreplident: d(efault), f(ull), i(ndex), n(othing)
    # With replica identity 'i': whether that index is the primary key's (None: it was dropped).
    identity_index_is_primary: bool | None = None
    partitioned: bool = False
    partition_of: str | None = None  # a partition: its partitioned root table
    persistence: str = "p"  # pg_class.relpersistence: p(ermanent), u(nlogged), t(emporary)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    def column(self, name: str) -> ColumnInfo | None:
        return next((c for c in self.columns if c.name == name), None)

    def problem(self) -> str | None:
        """Why zero-ETL would not replicate this table (the ``Failed`` reason), or None."""
        reasons = [p.reason for p in self.problems()]
        return "; ".join(reasons) if reasons else None

    def problems(self) -> list[Ineligibility]:
        """Every zero-ETL eligibility rule this table breaks (``eligibility``)."""
        return eligibility.problems(self)

    def target(self) -> TableInfo:
        """This table as the replica has it (column types as AWS maps them)."""
        return replace(self, columns=tuple(c.target() for c in self.columns))
