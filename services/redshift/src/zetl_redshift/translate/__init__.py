"""Redshift SQL in, what the front does with it out.

The seam between the wire protocol (``zetl_redshift.server``) and the dialect: the server hands
every statement text it receives (a simple Query's string, an extended Parse's query) to
:func:`translate` and acts on the answer:

- :class:`Forward`: send ``sql`` to the warehouse in place of the client's text (parameters
  ``$n`` keep their numbers);
- :class:`ZeroEtlCommand`: a zero-ETL statement the warehouse cannot run itself
  (``CREATE DATABASE ... FROM INTEGRATION``, ``ALTER DATABASE ... INTEGRATION ...``): the server
  runs it with ``zetl_redshift.integration.run`` as the client's own role and answers with its
  command tag;
- :class:`Refused` (raised): Redshift refuses the statement, or zetl does not emulate it; the
  server answers with an ErrorResponse of that SQLSTATE and message, and sends nothing on.

How a statement is handled, cheapest first (answers are cached by statement text):

1. zero-ETL statements and features zetl does not emulate are recognised by their first words;
2. a token scan (``scan``): a statement with nothing Redshift-only, nothing to map and nothing
   Redshift refuses is forwarded exactly as written;
3. otherwise it is parsed as Redshift SQL. A statement over user tables is checked against the
   refusal rules ``zetl transform check`` applies (``zetl_redshift.dialect``); a catalog query
   (only pg_catalog, information_schema and Redshift's system views, as dbt and the drivers
   send) runs on Redshift's leader node, which accepts PostgreSQL, so it is not;
4. the rules (``rules``) rewrite it; only a statement they changed is regenerated.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from sqlglot import exp, tokenize
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokenizer_core import Token, TokenType

from zetl_redshift import dialect
from zetl_redshift.catalog import CATALOG_VIEWS
from zetl_redshift.translate import refusals as refusing
from zetl_redshift.translate.aliases import resolve_where_aliases
from zetl_redshift.translate.rules import (
    CATALOG_SCHEMAS,
    COLUMN_KEY_MARK,
    Context,
    RedshiftFront,
    TableAttributes,
    Untranslatable,
    rewrite,
)
from zetl_redshift.translate.scan import needs_tree, redshift_words

CACHE_SIZE = 4096
REPLICA_DATABASE_ENV = "ZETL_REPLICA_DATABASE"
# Words sqlglot's generator itself turns into PostgreSQL (TOP -> LIMIT, NVL -> COALESCE, ...):
# a statement holding one is regenerated even when no rule of ours fired.
REGENERATE = frozenset({
    "top", "qualify", "nvl", "nvl2", "decode", "len", "charindex", "median", "identity",
})  # fmt: skip
SYSTEM_TABLES = ("pg_", "stl_", "stv_", "svl_", "svv_", "sys_")


@dataclass(frozen=True)
class Forward:
    sql: str


@dataclass(frozen=True)
class ZeroEtlCommand:
    statement: str  # the client's text, parsed by zetl_redshift.integration


class Refused(Exception):  # noqa: N818 - it is a refusal, not a programming error
    def __init__(self, message: str, sqlstate: str = "0A000") -> None:
        super().__init__(message)
        self.message = message
        self.sqlstate = sqlstate


def translate(sql: str, database: str | None = None) -> Forward | ZeroEtlCommand:
    """What to do with one statement text from a client (see the module's docstring).

    ``database`` is the session's database: a three-part name into any other database reads
    the zero-ETL database through the link. Without it, the zero-ETL databases are the ones
    ``ZETL_REPLICA_DATABASE`` names (comma-separated; default raw_transactions).
    """
    scope = database or "!" + os.environ.get(REPLICA_DATABASE_ENV, "raw_transactions")
    answer = _cached(sql, scope)
    if isinstance(answer, Refused):
        raise answer
    return answer


def cache_clear() -> None:
    _cached.cache_clear()


@lru_cache(maxsize=CACHE_SIZE)
def _cached(sql: str, scope: str) -> Forward | ZeroEtlCommand | Refused:
    try:
        return _translate(sql, _foreign(scope))
    except Refused as refused:
        return refused


def _foreign(scope: str) -> Callable[[str], bool]:
    if scope.startswith("!"):
        replicas = {name.strip().lower() for name in scope[1:].split(",") if name.strip()}
        return replicas.__contains__
    current = scope.lower()
    return lambda database: database != current


def _translate(sql: str, foreign: Callable[[str], bool]) -> Forward | ZeroEtlCommand:
    if refusing.is_zero_etl(sql):
        return ZeroEtlCommand(sql)
    message = refusing.not_emulated(sql)
    if message:
        raise Refused(message)
    try:
        tokens = tokenize(sql, read="redshift")
    except TokenError:
        return Forward(sql)  # PostgreSQL answers with its own syntax error
    if not needs_tree(tokens):
        return Forward(sql)
    creating = refusing.body(sql)[:6].lower() == "create"
    text, interleaved = _column_keys(sql, tokens) if creating else (sql, False)
    try:
        trees = [t for t in RedshiftFront().parse(text) if t]
    except ParseError:
        # not Redshift's grammar as sqlglot knows it: PostgreSQL decides
        return Forward(_catalog_sql(sql, tokens))
    words = redshift_words(tokens)
    leader = all(_on_leader_node(tree) for tree in trees)
    if leader and not words:
        return Forward(_catalog_sql(sql, tokens))
    if leader and text == sql:
        resolved = resolve_where_aliases(sql, tokens)
        if resolved != sql:
            text = resolved
            trees = [t for t in RedshiftFront().parse(text) if t]
    if not leader:
        found = dialect.postgres_function_calls(tokens) + dialect.refusals(trees)
        if found:
            raise Refused(refusing.redshift_refusal(list(dict.fromkeys(found))))
    statements = []
    changed = bool(words & REGENERATE)
    for tree in trees:
        if isinstance(tree, exp.Command):
            statements.append(tree.sql("postgres"))
            continue
        write = refusing.zero_etl_write(tree, foreign)
        if write:
            raise Refused(write, "25006")
        ctx = Context(foreign=foreign, known=_names(tree), navigation=not leader)
        try:
            tree = rewrite(tree, ctx)
        except Untranslatable as exc:
            raise Refused(str(exc), "42883") from None
        changed = changed or ctx.changed or text != sql
        statements.append(_with_attributes(tree, ctx.attributes, interleaved))
    if not changed:
        return Forward(sql)
    return Forward(";\n".join(statements))


def _on_leader_node(tree: exp.Expr) -> bool:
    """Whether the statement reads only the catalog (or no table at all)."""
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        name = table.name.lower()
        if not name or name in ctes or isinstance(table.this, exp.Func):
            continue
        if table.db.lower() in CATALOG_SCHEMAS or name.startswith(SYSTEM_TABLES):
            continue
        if name in CATALOG_VIEWS:
            continue
        return False
    return not isinstance(tree, refusing.WRITES)


def _names(tree: exp.Expr) -> frozenset[str]:
    """Every table name and alias of the statement: a dotted name starting with one is a column
    reference, any other is SUPER navigation."""
    names = set()
    for table in tree.find_all(exp.Table):
        names.add(table.name.lower())
        if table.alias:
            names.add(table.alias.lower())
    for alias in tree.find_all(exp.TableAlias):
        names.add(alias.name.lower())
    for cte in tree.find_all(exp.CTE):
        names.add(cte.alias_or_name.lower())
    return frozenset(names - {""})


def _catalog_sql(sql: str, tokens: list[Token]) -> str:
    """The client's catalog SQL with the two edits Redshift's leader node makes unnecessary:
    aliases used in WHERE resolved, system view names mapped."""
    resolved = resolve_where_aliases(sql, tokens)
    if resolved != sql:
        sql, tokens = resolved, tokenize(resolved, read="redshift")
    return _catalog_names(sql, tokens)


def _catalog_names(sql: str, tokens: list[Token]) -> str:
    """Redshift's system view names (bare or in pg_catalog) pointed at zetl_redshift, and
    version() answered as Redshift answers it, by editing the text itself: a catalog query is
    PostgreSQL already, and regenerating it could change it."""
    from zetl_redshift.translate.rules import REDSHIFT_VERSION

    edits: list[tuple[int, int, str]] = []
    # has_table_privilege(user, 'svv_table_info', 'SELECT'): dbt-redshift asks before reading it
    privilege_check = any(t.text.lower() == "has_table_privilege" for t in tokens)
    for index, token in enumerate(tokens):
        word = token.text.lower()
        before = tokens[index - 1] if index else None
        qualified = before is not None and before.token_type == TokenType.DOT
        if token.token_type == TokenType.STRING:
            name = word.removeprefix("pg_catalog.")
            if privilege_check and name in CATALOG_VIEWS:
                edits.append((token.start, token.end + 1, f"'zetl_redshift.{name}'"))
        elif word in CATALOG_VIEWS:
            name = sql[token.start : token.end + 1]
            if not qualified:
                edits.append((token.start, token.end + 1, f"zetl_redshift.{name}"))
            elif index >= 2 and tokens[index - 2].text.lower() == "pg_catalog":
                edits.append((tokens[index - 2].start, token.end + 1, f"zetl_redshift.{name}"))
        elif word == "version" and not qualified and _called_without_arguments(tokens, index):
            edits.append((token.start, tokens[index + 2].end + 1, f"'{REDSHIFT_VERSION}'"))
    for start, end, replacement in reversed(edits):
        sql = sql[:start] + replacement + sql[end:]
    return sql


def _called_without_arguments(tokens: list[Token], index: int) -> bool:
    kinds = [t.token_type for t in tokens[index + 1 : index + 3]]
    return kinds == [TokenType.L_PAREN, TokenType.R_PAREN]


def _column_keys(sql: str, tokens: list[Token]) -> tuple[str, bool]:
    """Column-level DISTKEY/SORTKEY (which sqlglot cannot parse) spelled as an ENCODE mark the
    CREATE TABLE rule reads back, and INTERLEAVED (likewise) taken out; whether it was there."""
    edits: list[tuple[int, int, str]] = []
    interleaved = False
    for index, token in enumerate(tokens):
        word = token.text.lower()
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        after = following.text.lower() if following else ""
        if word == "interleaved" and after == "sortkey":
            interleaved = True
            edits.append((token.start, token.end + 1, ""))
        elif (
            word in ("distkey", "sortkey")
            and following is not None
            and following.token_type in (TokenType.COMMA, TokenType.R_PAREN)
        ):
            edits.append((token.start, token.end + 1, f"ENCODE {COLUMN_KEY_MARK}{word}"))
        if word in ("sortkey", "diststyle", "encode") and after == "auto":
            assert following is not None
            edits.append((token.start, following.end + 1, ""))  # AUTO: Redshift's default
    text = sql
    for start, end, replacement in reversed(edits):
        text = text[:start] + replacement + text[end:]
    return text, interleaved


def _with_attributes(tree: exp.Expr, attributes: TableAttributes | None, interleaved: bool) -> str:
    """The statement, and when it declared distribution, sort keys or encodings, the call that
    records them for Redshift's catalog views, as one statement (the extended protocol takes
    one statement per Parse)."""
    sql = tree.sql("postgres")
    if attributes is None:
        return sql
    if interleaved and attributes.sortkey:
        attributes.sortkey_type = "interleaved"

    def literal(value: str | None) -> str:
        return "NULL" if value is None else "'" + value.replace("'", "''") + "'"

    sortkey = "ARRAY[" + ", ".join(literal(k) for k in attributes.sortkey) + "]::text[]"
    record = (
        f"PERFORM zetl_redshift.record_table_attributes({literal(attributes.table)}::regclass,"
        f" {literal(attributes.diststyle)}, {literal(attributes.distkey)}, {sortkey},"
        f" {literal(attributes.sortkey_type)}, {literal(json.dumps(attributes.encodings))}::jsonb)"
    )
    return f"DO $zetl$ BEGIN {sql}; {record}; END $zetl$"
