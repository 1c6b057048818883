"""What the source's catalog tells about a column a Relation message shows changed: what the
rows already there hold in an added column, and whether a column was renamed in place. The
schema-change planner (``apply.schema``) asks; when the catalog cannot say, it re-copies."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg2.extensions


@dataclass(frozen=True)
class Backfill:
    """What rows that existed before a column was added hold in it, as the source sees it."""

    known: bool  # False: not knowable from the catalog (the table must be copied again)
    value: str | None = None  # its text form; None: NULL


def added_column_backfill(
    conn: psycopg2.extensions.connection, schema: str, table: str, column: str
) -> Backfill:
    """ADD COLUMN ... DEFAULT v writes no WAL for the rows already there (Postgres keeps v in
    the catalog, ``attmissingval``), so no change message ever carries it: read it from there.
    A volatile default rewrote the table instead (no change messages either, and a value per
    row): that, or a default set after the column came, cannot be read back."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT a.atthasmissing, (a.attmissingval::text::text[])[1], d.adnum IS NOT NULL"
            " FROM pg_attribute a"
            " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            " WHERE a.attrelid = to_regclass(format('%%I.%%I', %s::text, %s::text))"
            " AND a.attname = %s AND NOT a.attisdropped",
            (schema, table, column),
        )
        row = cur.fetchone()
    if row is None:
        return Backfill(known=False)
    return backfill_of(*row)


def backfill_of(has_missing: bool, missing: str | None, has_default: bool) -> Backfill:
    """The backfill the catalog's ``atthasmissing``, ``attmissingval`` and whether the column
    has a default (``pg_attrdef``) tell."""
    if has_missing:
        return Backfill(known=True, value=missing)
    return Backfill(known=not has_default)


def is_renamed_in_place(
    conn: psycopg2.extensions.connection, schema: str, table: str, column: str
) -> bool:
    """Whether ``column`` can be a column renamed in place rather than one dropped and one
    added at the end: it is not the table's newest attribute, or no attribute was ever dropped.
    (A rename keeps the attribute number; a drop + add leaves a dropped attribute before the
    new one.) When unsure, False: the table is copied again, which is always right."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT a.attnum, (SELECT max(attnum) FROM pg_attribute WHERE attrelid = a.attrelid),"
            " (SELECT count(*) FROM pg_attribute WHERE attrelid = a.attrelid AND attisdropped)"
            " FROM pg_attribute a"
            " WHERE a.attrelid = to_regclass(format('%%I.%%I', %s::text, %s::text))"
            " AND a.attname = %s AND NOT a.attisdropped",
            (schema, table, column),
        )
        row = cur.fetchone()
    if row is None:
        return False
    return can_be_renamed(*row)


def can_be_renamed(attnum: int, newest: int, dropped: int) -> bool:
    """Whether the attribute ``attnum`` of a table whose newest attribute is ``newest`` and
    that has ``dropped`` dropped attributes can be a column renamed in place."""
    return bool(attnum < newest or dropped == 0)
