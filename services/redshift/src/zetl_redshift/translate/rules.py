"""Redshift SQL rewritten into PostgreSQL: rules over sqlglot's syntax tree.

The tree is read with :class:`RedshiftFront`, sqlglot's Redshift reader with the functions whose
meaning sqlglot gets wrong left as plain calls, so each rule below sees the function as the
client wrote it and produces what Redshift's SQL reference specifies. The rules run bottom-up
(arguments first), so nested calls (``dateadd(day, 1, getdate())``) compose.

What sqlglot already writes correctly for PostgreSQL (TOP, QUALIFY, NVL, NVL2, DECODE, LEN,
CHARINDEX, MEDIAN, IDENTITY) is left to its generator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlglot import exp
from sqlglot.dialects.redshift import Redshift

from zetl_redshift.catalog import CATALOG_VIEWS, SCHEMA

# What `SELECT version()` answers on Redshift (redshift_connector and dbt read the "Redshift" part).
REDSHIFT_VERSION = (
    "PostgreSQL 8.0.2 on i686-pc-linux-gnu, compiled by GCC gcc (GCC) 3.4.2 20041017"
    " (Red Hat 3.4.2-6.fc3), Redshift 1.0.77467"
)
VARCHAR_MAX = 65535
CATALOG_SCHEMAS = frozenset({"pg_catalog", "information_schema", SCHEMA})

# Functions sqlglot's Redshift reader maps to nodes that PostgreSQL then runs differently (or
# not at all): kept as plain calls, rewritten below.
OWN_FUNCTIONS = frozenset({
    "GETDATE", "DATEADD", "DATE_ADD", "DATEDIFF", "DATE_DIFF", "DATE_PART", "DATEPART",
    "CONVERT_TIMEZONE", "STRTOL", "JSON_EXTRACT_PATH_TEXT", "JSON_PARSE", "TRUNC", "ADD_MONTHS",
    "MONTHS_BETWEEN", "REGEXP_SUBSTR", "IS_VALID_JSON", "IS_VALID_JSON_ARRAY",
})  # fmt: skip


class RedshiftFront(Redshift):
    class Parser(Redshift.Parser):  # type: ignore[valid-type,misc]
        FUNCTIONS: ClassVar[dict[str, Any]] = {
            name: build for name, build in Redshift.Parser.FUNCTIONS.items()
            if name not in OWN_FUNCTIONS
        }  # fmt: skip
        FUNCTION_PARSERS: ClassVar[dict[str, Any]] = {
            name: build for name, build in Redshift.Parser.FUNCTION_PARSERS.items()
            if name not in OWN_FUNCTIONS
        }  # fmt: skip


# Redshift's dateparts (DATEADD, DATEDIFF, DATE_PART) and their abbreviations.
DATEPARTS = {
    **dict.fromkeys(("millennium", "millennia", "mil", "mils"), "millennium"),
    **dict.fromkeys(("century", "centuries", "c", "cent", "cents"), "century"),
    **dict.fromkeys(("decade", "decades", "dec", "decs"), "decade"),
    **dict.fromkeys(("epoch",), "epoch"),
    **dict.fromkeys(("year", "years", "y", "yr", "yrs"), "year"),
    **dict.fromkeys(("quarter", "quarters", "qtr", "qtrs"), "quarter"),
    **dict.fromkeys(("month", "months", "mon", "mons"), "month"),
    **dict.fromkeys(("week", "weeks", "w"), "week"),
    **dict.fromkeys(("dayofweek", "dow", "dw", "weekday"), "dow"),
    **dict.fromkeys(("dayofyear", "doy", "dy", "yearday"), "doy"),
    **dict.fromkeys(("day", "days", "d"), "day"),
    **dict.fromkeys(("hour", "hours", "h", "hr", "hrs"), "hour"),
    **dict.fromkeys(("minute", "minutes", "m", "min", "mins"), "minute"),
    **dict.fromkeys(("second", "seconds", "s", "sec", "secs"), "second"),
    **dict.fromkeys(("millisecond", "milliseconds", "ms", "msec", "msecs", "msecond",
                     "mseconds", "millisec", "millisecs", "millisecon"), "millisecond"),
    **dict.fromkeys(("microsecond", "microseconds", "microsec", "microsecs", "microsecond",
                     "usecond", "useconds", "us", "usec", "usecs"), "microsecond"),
    **dict.fromkeys(("timezone", "timezone_hour", "timezone_minute"), "timezone"),
}  # fmt: skip
INTERVALS = {  # one unit of each datepart DATEADD adds
    "millennium": "1000 years", "century": "100 years", "decade": "10 years", "year": "1 year",
    "quarter": "3 months", "month": "1 month", "week": "7 days", "day": "1 day",
    "hour": "1 hour", "minute": "1 minute", "second": "1 second",
    "millisecond": "1 millisecond", "microsecond": "1 microsecond",
}  # fmt: skip
# DATEDIFF counts the boundaries crossed: each unit's ordinal number, from a timestamp.
ORDINALS = {
    "millennium": "floor(extract(year from {t}) / 1000)",
    "century": "floor(extract(year from {t}) / 100)",
    "decade": "floor(extract(year from {t}) / 10)",
    "year": "extract(year from {t})",
    "quarter": "extract(year from {t}) * 4 + extract(quarter from {t})",
    "month": "extract(year from {t}) * 12 + extract(month from {t})",
    "week": "floor(extract(epoch from date_trunc('week', {t})) / 604800)",
    "day": "floor(extract(epoch from date_trunc('day', {t})) / 86400)",
    "hour": "floor(extract(epoch from date_trunc('hour', {t})) / 3600)",
    "minute": "floor(extract(epoch from date_trunc('minute', {t})) / 60)",
    "second": "floor(extract(epoch from date_trunc('second', {t})))",
    "millisecond": "floor(extract(epoch from date_trunc('milliseconds', {t})) * 1000)",
    "microsecond": "floor(extract(epoch from {t}) * 1000000)",
}  # fmt: skip
TEXT_TYPES = frozenset({
    exp.DataType.Type.VARCHAR, exp.DataType.Type.CHAR, exp.DataType.Type.TEXT,
    exp.DataType.Type.NVARCHAR, exp.DataType.Type.NCHAR, exp.DataType.Type.BPCHAR,
})  # fmt: skip
COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


class Untranslatable(Exception):  # noqa: N818 - becomes a Refused
    """A construct the rules cannot write faithfully in PostgreSQL."""


@dataclass
class TableAttributes:
    """What CREATE TABLE said about distribution, sort order and compression: PostgreSQL has
    no use for it, Redshift's catalog views show it."""

    table: str = ""
    diststyle: str | None = None
    distkey: str | None = None
    sortkey: list[str] = field(default_factory=list)
    sortkey_type: str | None = None
    encodings: dict[str, str] = field(default_factory=dict)

    def any(self) -> bool:
        return bool(self.diststyle or self.distkey or self.sortkey or self.encodings)


@dataclass
class Context:
    """One statement's rewrite: which databases are zero-ETL ones, and what the rules did."""

    foreign: Callable[[str], bool]  # is this database one the zero-ETL link imports
    known: frozenset[str] = frozenset()  # the statement's table names and aliases
    navigation: bool = True  # SUPER navigation is resolved (user tables only)
    changed: bool = False
    attributes: TableAttributes | None = None


def _sql(template: str, **args: exp.Expr) -> exp.Expr:
    """A PostgreSQL expression from a template whose {name} slots hold argument expressions."""
    from sqlglot import parse_one

    slots = {name: f"__zetl_slot_{name}" for name in args}
    tree = parse_one(template.format(**slots), read="postgres")

    def fill(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and not node.table and node.name.startswith("__zetl_slot_"):
            return args[node.name.removeprefix("__zetl_slot_")].copy()
        return node

    return tree.transform(fill)


def _ours(name: str, *args: exp.Expr) -> exp.Expr:
    """A call of one of the catalog's functions (sql/functions.sql)."""
    return exp.Dot(
        this=exp.to_identifier(SCHEMA), expression=exp.Anonymous(this=name, expressions=list(args))
    )


def _datepart(node: exp.Expr, function: str) -> str:
    word = node.name if isinstance(node, exp.Column | exp.Var | exp.Literal) else ""
    part = DATEPARTS.get(word.lower())
    if part is None:
        raise Untranslatable(f'{function}: "{node.sql()}" is not a datepart Redshift accepts')
    return part


def _timestamp(node: exp.Expr) -> exp.Expr:
    """A string literal read as a timestamp (Redshift's reading); any other argument keeps its
    type, so a timestamptz stays an instant whatever the session's time zone."""
    if isinstance(node, exp.Literal) and node.is_string:
        return exp.cast(node, exp.DataType.build("timestamp"))
    return node


def _dateadd(args: list[exp.Expr]) -> exp.Expr:
    if len(args) != 3:
        raise Untranslatable("DATEADD takes (datepart, interval, date)")
    part = _datepart(args[0], "DATEADD")
    if part not in INTERVALS:
        raise Untranslatable(f"DATEADD: datepart {part} cannot be added")
    return _sql(
        f"{{ts}} + {{n}} * interval '{INTERVALS[part]}'",
        ts=_timestamp(args[2]),
        n=args[1],
    )


def _datediff(args: list[exp.Expr]) -> exp.Expr:
    if len(args) != 3:
        raise Untranslatable("DATEDIFF takes (datepart, date, date)")
    part = _datepart(args[0], "DATEDIFF")
    if part not in ORDINALS:
        raise Untranslatable(f"DATEDIFF: datepart {part} has no boundaries to count")
    ordinal = ORDINALS[part]
    return _sql(
        f"cast(({ordinal.format(t='{b}')}) - ({ordinal.format(t='{a}')}) as bigint)",
        # boundaries in the session's time zone, as Redshift counts them (UTC by default)
        a=exp.cast(args[1], exp.DataType.build("timestamp")),
        b=exp.cast(args[2], exp.DataType.build("timestamp")),
    )


def _date_part(args: list[exp.Expr]) -> exp.Expr | None:
    if len(args) != 2 or (isinstance(args[0], exp.Literal) and args[0].is_string):
        return None  # date_part('day', ts): PostgreSQL's own spelling, same meaning
    part = _datepart(args[0], "DATE_PART")
    name = {"millisecond": "milliseconds", "microsecond": "microseconds"}.get(part, part)
    return _sql(f"cast(extract({name} from {{ts}}) as double precision)", ts=args[1])


def _convert_timezone(args: list[exp.Expr]) -> exp.Expr:
    if len(args) == 2:
        args = [exp.Literal.string("UTC"), *args]
    if len(args) != 3:
        raise Untranslatable("CONVERT_TIMEZONE takes ([source_timezone,] target_timezone, ts)")
    # zetl_redshift.convert_timezone: a timestamp is read in the source zone, a timestamptz is
    # an instant already (its overloads, sql/functions.sql)
    return _ours("convert_timezone", args[0], args[1], _timestamp(args[2]))


def _json_extract_path_text(args: list[exp.Expr]) -> exp.Expr:
    if len(args) < 2:
        raise Untranslatable("JSON_EXTRACT_PATH_TEXT takes (json_string, path_elem [, ...])")
    lenient = isinstance(args[-1], exp.Boolean)
    path = args[:-1] if lenient else args
    null_if_invalid = exp.true() if lenient and args[-1].this else exp.false()
    return _ours("json_extract_path_text", null_if_invalid, *path)


def _function(node: exp.Anonymous) -> exp.Expr | None:
    name = node.name.lower()
    args = list(node.expressions)
    if name == "getdate":
        return _sql("cast(date_trunc('second', statement_timestamp()) as timestamp)")
    if name in ("dateadd", "date_add"):
        return _dateadd(args)
    if name in ("datediff", "date_diff"):
        return _datediff(args)
    if name in ("date_part", "datepart"):
        return _date_part(args)
    if name == "convert_timezone":
        return _convert_timezone(args)
    if name == "json_extract_path_text":
        return _json_extract_path_text(args)
    if name == "json_parse" and len(args) == 1:
        return exp.cast(args[0], exp.DataType.build("jsonb"))
    if name == "trunc" and len(args) == 1:
        return _ours("trunc", *args)  # trunc(timestamp) is a date; trunc(number) a number
    if name in ("strtol", "add_months", "months_between", "is_valid_json", "is_valid_json_array"):
        return _ours(name, *args)
    if name in ("json_extract_array_element_text", "json_array_length"):
        return _ours(name, *args)
    if name == "pg_get_late_binding_view_cols":
        return _ours(name, *args)
    return None


def _listagg(node: exp.Expr) -> exp.Expr:
    """LISTAGG([DISTINCT] expr [, delimiter]) [WITHIN GROUP (ORDER BY ...)] -> string_agg."""
    order = node.expression if isinstance(node, exp.WithinGroup) else None
    aggregate = node.this if isinstance(node, exp.WithinGroup) else node
    value = aggregate.this
    separator = aggregate.args.get("separator")
    distinct = isinstance(value, exp.Distinct)
    if distinct:
        parts = list(value.expressions)
        value = parts[0]
        separator = parts[1] if len(parts) > 1 else separator
    text = exp.cast(value, exp.DataType.build("varchar"))
    if distinct and order is not None:
        # PostgreSQL wants DISTINCT's ORDER BY on the aggregated (text) expression itself
        for ordered in order.expressions:
            if ordered.this == value:
                ordered.set("this", text.copy())
    argument: exp.Expr = exp.Distinct(expressions=[text]) if distinct else text
    ordering = " " + order.sql("postgres").replace("{", "{{").replace("}", "}}") if order else ""
    call = "string_agg({value}, {sep}" + ordering + ")"
    delimiter = separator if separator is not None else exp.Literal.string("")
    return _sql(call, value=argument, sep=delimiter)


def _data_type(node: exp.DataType) -> exp.Expr | None:
    kind = node.this
    if kind == exp.DataType.Type.SUPER:
        return exp.DataType.build("jsonb")
    if kind == exp.DataType.Type.VARBINARY:
        return exp.DataType.build("bytea")
    if kind in TEXT_TYPES and any(
        p.name.lower() == "max" for p in node.expressions if isinstance(p, exp.DataTypeParam)
    ):
        return exp.DataType.build(f"varchar({VARCHAR_MAX})")
    return None


def _table(node: exp.Table, ctx: Context) -> exp.Expr | None:
    if not isinstance(node.this, exp.Identifier):
        return None  # a table function: the call's own rule qualifies it
    name, schema, database = node.name.lower(), node.db.lower(), node.catalog.lower()
    if name in CATALOG_VIEWS and not database and schema in ("", "pg_catalog"):
        node.set("db", exp.to_identifier(SCHEMA))
        return node
    if database and ctx.foreign(database):
        # zero-ETL database: its `public` is imported into this database as <database>_public
        node.set("db", exp.to_identifier(f"{database}_{schema or 'public'}"))
        node.set("catalog", None)
        return node
    return None


# --- SUPER navigation (PartiQL): s.a.b and s[0], on jsonb -------------------------------------


def _navigation(base: exp.Expr, path: list[str]) -> exp.Expr:
    call = exp.Anonymous(
        this="jsonb_extract_path", expressions=[base, *(exp.Literal.string(p) for p in path)]
    )
    call.meta["zetl_navigation"] = True
    return call


def _is_navigation(node: exp.Expr) -> bool:
    return isinstance(node, exp.Anonymous) and bool(node.meta.get("zetl_navigation"))


def _column(node: exp.Column, ctx: Context) -> exp.Expr | None:
    """`alias.col.a.b` or `col.a` (no table of that name): navigation into SUPER column col."""
    if not ctx.navigation:
        return None
    parts = [p.name for p in node.parts]
    if len(parts) < 2:
        return None
    known = [i for i, p in enumerate(parts[:-1]) if p.lower() in ctx.known]
    start = known[-1] + 1 if known else 0
    if len(parts) - start < 2:
        return None  # table.column, schema.table.column: a column
    column = exp.column(parts[start], table=parts[start - 1] if known else None)
    return _navigation(column, parts[start + 1 :])


def _extend(node: exp.Expr, ctx: Context) -> exp.Expr | None:
    if isinstance(node, exp.Bracket) and ctx.navigation:
        keys = node.expressions
        if len(keys) != 1 or not isinstance(keys[0], exp.Literal):
            raise Untranslatable("SUPER subscripts must be literals ([0], ['key'])")
        base: exp.Expr = node.this
        key = keys[0].name
        if _is_navigation(base):
            base.append("expressions", exp.Literal.string(key))
            return base
        return _navigation(base, [key])
    if isinstance(node, exp.Dot) and _is_navigation(node.this):
        navigation: exp.Expr = node.this
        navigation.append("expressions", exp.Literal.string(node.name))
        return navigation
    return None


def _as_text(node: exp.Expr) -> exp.Expr:
    node.set("this", "jsonb_extract_path_text")
    return node


def _navigation_value(node: exp.Expr) -> exp.Expr | None:
    """A navigation cast to text, or compared with a literal, reads the scalar, not jsonb."""
    if isinstance(node, exp.Cast) and _is_navigation(node.this):
        if node.to.this in TEXT_TYPES:
            _as_text(node.this)
        else:
            node.set("this", _as_text(node.this))
        return node
    if isinstance(node, COMPARISONS):
        for side, other in (("this", node.expression), ("expression", node.this)):
            value = node.args[side]
            if _is_navigation(value) and isinstance(other, exp.Literal):
                text = _as_text(value)
                node.set(side, text if other.is_string else exp.cast(text, "numeric"))
                return node
    return None


# --- CREATE TABLE: distribution, sort keys, encodings ------------------------------------------

COLUMN_KEY_MARK = "zetl_column_"  # ENCODE zetl_column_distkey: see translate.column_keys


def _create(node: exp.Create, ctx: Context) -> exp.Expr | None:
    changed = False
    if node.args.get("no_schema_binding"):
        # Late-binding: PostgreSQL binds every view; the link's tables are replaced, not
        # dropped, so a bound view over them keeps working.
        node.set("no_schema_binding", None)
        changed = True
    if str(node.args.get("kind", "")).upper() != "TABLE":
        return node if changed else None
    attributes = TableAttributes(table=node.this.this.sql("postgres") if isinstance(
        node.this, exp.Schema) else node.this.sql("postgres"))  # fmt: skip
    properties = node.args.get("properties")
    for prop in list(properties.expressions) if properties else []:
        if isinstance(prop, exp.DistStyleProperty):
            attributes.diststyle = prop.name.upper()
        elif isinstance(prop, exp.DistKeyProperty):
            attributes.distkey = prop.name
        elif isinstance(prop, exp.SortKeyProperty):
            keys = prop.this if isinstance(prop.this, list) else [prop.this]
            attributes.sortkey = [k.name for k in keys]
            attributes.sortkey_type = "compound" if prop.args.get("compound") else None
        elif isinstance(prop, exp.BackupProperty):
            pass
        else:
            continue
        prop.pop()
    if isinstance(node.this, exp.Schema):
        for column in node.this.expressions:
            if not isinstance(column, exp.ColumnDef):
                continue
            for constraint in list(column.constraints):
                kind = constraint.kind
                if not isinstance(kind, exp.EncodeColumnConstraint):
                    continue
                value = kind.name.lower()
                if value == COLUMN_KEY_MARK + "distkey":
                    attributes.distkey = column.name
                    attributes.diststyle = "KEY"
                elif value == COLUMN_KEY_MARK + "sortkey":
                    attributes.sortkey.append(column.name)
                else:
                    attributes.encodings[column.name] = value
                constraint.pop()
    if attributes.distkey and not attributes.diststyle:
        attributes.diststyle = "KEY"
    if attributes.any():
        ctx.attributes = attributes
        changed = True
    return node if changed else None


def _rule(node: exp.Expr, ctx: Context) -> exp.Expr | None:
    if isinstance(node, exp.Anonymous):
        return _function(node)
    if isinstance(node, exp.CurrentTimestamp) and node.args.get("sysdate"):
        return _sql("cast(transaction_timestamp() as timestamp)")
    if isinstance(node, exp.CurrentVersion):
        return exp.Literal.string(REDSHIFT_VERSION)
    if isinstance(node, exp.ApproxDistinct):
        # Redshift's HyperLogLog estimate is within 2% of the exact count this returns.
        return exp.Count(this=exp.Distinct(expressions=[node.this]))
    if isinstance(node, exp.WithinGroup) and isinstance(node.this, exp.GroupConcat):
        return _listagg(node)
    if isinstance(node, exp.GroupConcat) and not isinstance(node.parent, exp.WithinGroup):
        return _listagg(node)
    if isinstance(node, exp.DataType):
        return _data_type(node)
    if isinstance(node, exp.Table):
        return _table(node, ctx)
    if isinstance(node, exp.Column):
        return _column(node, ctx)
    if isinstance(node, exp.Bracket | exp.Dot):
        return _extend(node, ctx)
    if isinstance(node, (exp.Cast, *COMPARISONS)):
        return _navigation_value(node)
    if isinstance(node, exp.Create):
        return _create(node, ctx)
    if isinstance(node, exp.RegexpReplace) and not node.args.get("modifiers"):
        # Redshift's REGEXP_REPLACE replaces every match (PostgreSQL's the first, without 'g'),
        # and its replacement defaults to '' (r_REGEXP_REPLACE.html).
        if node.args.get("replacement") is None:
            node.set("replacement", exp.Literal.string(""))
        if node.args.get("position") is None and node.args.get("occurrence") is None:
            node.set("modifiers", exp.Literal.string("g"))
        return node
    return None


def rewrite(node: exp.Expr, ctx: Context) -> exp.Expr:
    """The rules applied bottom-up to ``node`` (mutated in place); returns its replacement."""
    for child in list(node.iter_expressions()):
        rewrite(child, ctx)
    replacement = _rule(node, ctx)
    if replacement is None:
        return node
    ctx.changed = True
    if replacement is not node:
        node.replace(replacement)
    return replacement
