"""The soak's own proof that nothing was lost or duplicated: every row of every table, by
primary key, source against replica (an md5 of each column's text), independent of `zetl
verify` (which sums a hash of whole rows per table)."""

from __future__ import annotations

from collections import Counter

import psycopg2.extensions
from psycopg2 import sql

# The source table's columns in name order, each with whether it is in the primary key.
COLUMNS_SQL = """
SELECT a.attname, a.attnum = ANY(i.indkey)
FROM pg_attribute a
LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attname
"""


def tables_of(conn: psycopg2.extensions.connection) -> list[str]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1"
        )
        return [name for (name,) in cur.fetchall()]


def row_hashes(
    conn: psycopg2.extensions.connection, table: str, columns: list[str], key: list[str]
) -> list[tuple[tuple[str, ...], str]]:
    """(primary key, md5 of every column's text) for each row: no aggregate hides a row."""
    as_text = [sql.SQL("coalesce({}::text, '\\N')").format(sql.Identifier(c)) for c in columns]
    query = sql.SQL("SELECT {}, md5(concat_ws(E'\\x1f', {})) FROM {}").format(
        sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(k)) for k in key),
        sql.SQL(", ").join(as_text),
        sql.Identifier("public", table),
    )
    with conn.cursor() as cur:
        cur.execute(query)
        return [(tuple(row[:-1]), row[-1]) for row in cur.fetchall()]


def compare(
    source: psycopg2.extensions.connection, replica: psycopg2.extensions.connection
) -> dict[str, dict[str, int]]:
    """Per table of the source's public schema: rows on each side, and those lost (on the
    source only), extra (on the replica only), duplicated (a key twice on the replica) and
    different (same key, another value). Each side is read in one snapshot."""
    for conn in (source, replica):
        conn.rollback()
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with conn.cursor() as cur:  # the same text for every value on both sides
            cur.execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET extra_float_digits = 3")
    out: dict[str, dict[str, int]] = {}
    try:
        replica_tables = set(tables_of(replica))
        for table in tables_of(source):
            if table not in replica_tables:
                out[table] = {"missing_on_replica": 1}
                continue
            with source.cursor() as cur:
                cur.execute(COLUMNS_SQL, (f"public.{table}",))
                described = cur.fetchall()
            columns = [name for name, _ in described]
            key = [name for name, is_key in described if is_key]
            source_rows = dict(row_hashes(source, table, columns, key))
            replica_list = row_hashes(replica, table, columns, key)
            replica_rows = dict(replica_list)
            per_key = Counter(k for k, _ in replica_list)
            out[table] = {
                "source_rows": len(source_rows),
                "replica_rows": len(replica_list),
                "lost": len(source_rows.keys() - replica_rows.keys()),
                "extra": len(replica_rows.keys() - source_rows.keys()),
                "duplicated": sum(n - 1 for n in per_key.values() if n > 1),
                "different": sum(
                    1 for k, h in source_rows.items() if k in replica_rows and replica_rows[k] != h
                ),
            }
    finally:
        source.rollback()
        replica.rollback()
    return out


def differences(tables: dict[str, dict[str, int]]) -> int:
    return sum(
        t.get(k, 0)
        for t in tables.values()
        for k in ("lost", "extra", "duplicated", "different", "missing_on_replica")
    )
