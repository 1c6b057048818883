"""DDL captured on the source, as it travels in the stream.

The source's event triggers (``compose/source/20-zetl-zero-etl-source.sql``) write a transactional
logical message for every table and schema DDL, at its position among the row changes: a
rolled-back DDL is never decoded, one inside a large transaction streams with it. Each message
names the tables the command touched with their new shape, the schemas it created, altered or
renamed, and what it dropped. The apply loop applies a table's shape exactly as it would a
Relation message (``apply.schema.plan``), renames in place what was renamed, and runs discovery
right after the transaction for what appeared or went away.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from zetl.errors import DataError
from zetl_replicator.source import pgoutput
from zetl_replicator.source.column_changes import Backfill, backfill_of, can_be_renamed

PREFIX = "zetl.ddl"  # the logical messages' prefix
EVENT_TRIGGERS = ("zetl_capture_ddl", "zetl_capture_drop")  # installed by the capture script


@dataclass(frozen=True)
class CapturedTable:
    """A table a DDL command touched, as it is after the command."""

    relation: pgoutput.Relation  # its shape, as a Relation message would carry it
    # What the catalog said inside the DDL's transaction, by column: what rows already there
    # hold in it (an added column), whether it can be a column renamed in place.
    backfills: dict[str, Backfill] = field(default_factory=dict)
    renamable: dict[str, bool] = field(default_factory=dict)

    def backfill(self, column: str) -> Backfill:
        return self.backfills.get(column, Backfill(known=False))

    def can_be_renamed(self, column: str) -> bool:
        return self.renamable.get(column, False)

    @property
    def oid(self) -> int:
        return self.relation.relation_id

    @property
    def qualified(self) -> str:
        return f"{self.relation.namespace}.{self.relation.name}"


@dataclass(frozen=True)
class CapturedDdl:
    tag: str  # the command tag: "ALTER TABLE", "DROP SCHEMA", ...
    tables: tuple[CapturedTable, ...]
    schemas: tuple[str, ...]  # created, altered or renamed (their new names)
    dropped: tuple[tuple[str, str | None, str], ...]  # (object type, schema, name)

    def concerns(self, scope: tuple[str, ...] | None) -> bool:
        """Whether it may change which tables of the schemas ``scope`` (None: every schema)
        replicate: discovery runs after it. CREATE SCHEMA alone changes nothing (zero-ETL: a
        no-op); a schema altered (renamed) or dropped always may."""
        if self.tag in ("ALTER SCHEMA", "DROP SCHEMA"):
            return True
        touched = {t.relation.namespace for t in self.tables}
        touched |= {(s or "") if kind == "table" else name for kind, s, name in self.dropped}
        return bool(touched) and (scope is None or bool(touched & set(scope)))

    @property
    def changes_membership(self) -> bool:
        """Whether tables may have appeared or gone (discovery runs after the transaction)."""
        return bool(self.schemas or self.dropped) or self.tag.startswith(("CREATE", "SELECT"))


def is_captured_ddl(message: pgoutput.LogicalMessage) -> bool:
    return message.transactional and message.prefix == PREFIX


def parse(message: pgoutput.LogicalMessage) -> CapturedDdl:
    """The DDL a capture message describes; DataError when it is not one we wrote."""
    try:
        body = json.loads(message.content)
        tables = tuple(_table(message.xid, t) for t in body.get("tables", ()))
        dropped = tuple(
            (str(d["type"]), d.get("schema"), str(d["name"])) for d in body.get("dropped", ())
        )
        return CapturedDdl(
            str(body["tag"]), tables, tuple(map(str, body.get("schemas", ()))), dropped
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"a {PREFIX} message at {pgoutput.lsn_to_str(message.lsn)} is not DDL capture's: {exc}"
        ) from exc


def _table(xid: int | None, table: dict[str, Any]) -> CapturedTable:
    columns = []
    backfills, renamable = {}, {}
    newest, dropped = int(table["newest"]), int(table["dropped"])
    for name, type_oid, modifier, key, attnum, has_missing, missing, has_default in table[
        "columns"
    ]:
        columns.append(pgoutput.Column(str(name), int(type_oid), int(modifier), bool(key)))
        backfills[str(name)] = backfill_of(bool(has_missing), missing, bool(has_default))
        renamable[str(name)] = can_be_renamed(int(attnum), newest, dropped)
    relation = pgoutput.Relation(
        xid,
        int(table["oid"]),
        str(table["schema"]),
        str(table["name"]),
        str(table["identity"]),
        tuple(columns),
    )
    return CapturedTable(relation, backfills, renamable)
