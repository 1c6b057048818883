"""The entity-relationship diagram, generated from a live migrated database (never drawn by hand).

``python -m zetl.schema.erd --out docs`` writes ``docs/erd.md`` (Mermaid) and ``docs/erd.png``
(Graphviz ``dot``, which must be on PATH). Without ``--url`` it migrates a throwaway Postgres
from the test harness (Docker); with ``--url`` it reads that database as it is.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import MetaData, Table, UniqueConstraint
from sqlalchemy.dialects import postgresql

from zetl.schema.migrate import engine_for, upgrade
from zetl.schema.models import LOAD_SCHEMA

SCHEMAS = {
    "public": "Replicated to the warehouse (zero-ETL)",
    LOAD_SCHEMA: "Loader bookkeeping (not replicated)",
}
SKIPPED_TABLES = {"alembic_version"}


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    nullable: bool
    keys: tuple[str, ...]  # PK, FK, UK


@dataclass(frozen=True)
class Relation:
    parent: str
    child: str
    columns: tuple[str, ...]
    optional: bool  # the child may have no parent (nullable foreign key)
    one_to_one: bool  # the foreign key is also unique


@dataclass(frozen=True)
class Schema:
    tables: dict[str, list[str]]  # schema → table names, in order
    columns: dict[str, list[Column]]  # qualified table → columns
    relations: list[Relation]


def qualified(table: Table) -> str:
    return table.name if table.schema in (None, "public") else f"{table.schema}.{table.name}"


def reflect(url: str) -> Schema:
    """Tables, columns, keys and foreign keys of the zetl schemas, as the database has them."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    tables: dict[str, list[str]] = {}
    columns: dict[str, list[Column]] = {}
    relations: list[Relation] = []
    engine = engine_for(url)
    for schema in SCHEMAS:
        metadata = MetaData()
        metadata.reflect(engine, schema=None if schema == "public" else schema)
        chosen = [
            t
            for t in metadata.sorted_tables
            if (t.schema or "public") == schema and t.name not in SKIPPED_TABLES
        ]
        tables[schema] = sorted(qualified(t) for t in chosen)
        for table in chosen:
            unique = {
                tuple(c.name for c in constraint.columns)
                for constraint in table.constraints
                if isinstance(constraint, UniqueConstraint)
            }
            foreign = {fk.parent.name for fk in table.foreign_keys}
            columns[qualified(table)] = [
                Column(
                    column.name,
                    column.type.compile(dialect=dialect)
                    .lower()
                    .replace("timestamp with time zone", "timestamptz"),
                    bool(column.nullable),
                    tuple(
                        key
                        for key, present in (
                            ("PK", column.primary_key),
                            ("FK", column.name in foreign),
                            ("UK", (column.name,) in unique),
                        )
                        if present
                    ),
                )
                for column in table.columns
            ]
            for constraint in table.foreign_key_constraints:
                names = tuple(c.name for c in constraint.columns)
                relations.append(
                    Relation(
                        parent=qualified(constraint.referred_table),
                        child=qualified(table),
                        columns=names,
                        optional=any(c.nullable for c in constraint.columns),
                        one_to_one=names in unique,
                    )
                )
    relations.sort(key=lambda r: (r.child, r.columns))
    return Schema(tables, columns, relations)


def _mermaid_name(table: str) -> str:
    return table.replace(".", "__")


def mermaid(schema: Schema) -> str:
    """One Mermaid erDiagram per schema."""
    parts = []
    for name, title in SCHEMAS.items():
        lines = ["```mermaid", "erDiagram"]
        members = set(schema.tables[name])
        for table in schema.tables[name]:
            lines.append(f"    {_mermaid_name(table)} {{")
            for column in schema.columns[table]:
                keys = f" {','.join(column.keys)}" if column.keys else ""
                note = column.sql_type + ("" if column.nullable else " not null")
                base_type = column.sql_type.split("(")[0].replace(" ", "_")
                lines.append(f'        {base_type} {column.name}{keys} "{note}"')
            lines.append("    }")
        for relation in schema.relations:
            if relation.child not in members:
                continue
            parent_end = "|o" if relation.optional else "||"
            child_end = "o|" if relation.one_to_one else "o{"
            label = ", ".join(relation.columns)
            lines.append(
                f"    {_mermaid_name(relation.parent)} {parent_end}--{child_end}"
                f' {_mermaid_name(relation.child)} : "{label}"'
            )
        lines.append("```")
        parts.append(f"## `{name}`: {title}\n\n" + "\n".join(lines))
    return (
        "# Source database ERD\n\n"
        "Generated from the live migrated schema by `make erd` (`python -m zetl.schema.erd`);\n"
        "do not edit by hand. The picture: [erd.png](erd.png).\n\n" + "\n\n".join(parts) + "\n"
    )


def graphviz(schema: Schema) -> str:
    """The same diagram in Graphviz DOT: one box per table, one cluster per schema."""
    lines = [
        "digraph erd {",
        '  graph [rankdir=LR, fontname="Helvetica", nodesep=0.4, ranksep=1.0];',
        '  node [shape=plain, fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=8, color="#555555", arrowhead=crow];',
    ]
    for index, (name, title) in enumerate(SCHEMAS.items()):
        lines.append(f'  subgraph cluster_{index} {{ label="{name}: {title}"; style=dashed;')
        for table in schema.tables[name]:
            rows = "".join(
                f'<tr><td align="left" port="{c.name}">{c.name}'
                f"{' <b>' + ' '.join(c.keys) + '</b>' if c.keys else ''}</td>"
                f'<td align="left"><font color="#666666">{c.sql_type}'
                f"{'' if c.nullable else ' not null'}</font></td></tr>"
                for c in schema.columns[table]
            )
            lines.append(
                f'    "{table}" [label=<<table border="0" cellborder="1" cellspacing="0">'
                f'<tr><td colspan="2" bgcolor="#dde7f3"><b>{table}</b></td></tr>{rows}</table>>];'
            )
        lines.append("  }")
    for relation in schema.relations:
        style = "dashed" if relation.optional else "solid"
        lines.append(
            f'  "{relation.child}":"{relation.columns[0]}" -> "{relation.parent}" '
            f'[label="{", ".join(relation.columns)}", style={style}, dir=back];'
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


@contextmanager
def _throwaway_database() -> Iterator[str]:
    from tests.harness import running_postgres  # the repository's test harness (Docker)

    with running_postgres({}) as server:
        database = server.create_database("erd")
        url = server.url(database)
        upgrade(url)
        yield url


def write(url: str, out: Path) -> None:
    dot = shutil.which("dot")
    if dot is None:
        raise SystemExit("Graphviz `dot` is not on PATH (Debian: apt-get install graphviz)")
    schema = reflect(url)
    out.mkdir(parents=True, exist_ok=True)
    (out / "erd.md").write_text(mermaid(schema), encoding="utf-8")
    subprocess.run(  # noqa: S603 - a fixed program on our own generated input
        [dot, "-Tpng", "-Gdpi=110", "-o", str(out / "erd.png")],
        input=graphviz(schema),
        text=True,
        check=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--url", help="read this migrated database instead of a throwaway one")
    args = parser.parse_args()
    if args.url:
        write(args.url, args.out)
        return
    with _throwaway_database() as url:
        write(url, args.out)


if __name__ == "__main__":
    main()
