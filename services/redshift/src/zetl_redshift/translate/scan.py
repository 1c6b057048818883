"""The token scan that decides whether a statement needs the syntax tree at all.

Most statements a client sends are already PostgreSQL (the catalog SQL of dbt and of the
driver, transaction control, plain selects): they are forwarded as the client wrote them,
because regenerating SQL with sqlglot changes what it should not (array subscripts shift by
one, REGEXP_SUBSTR becomes REGEXP_EXTRACT). Only a statement holding one of the tokens below
is parsed: a Redshift-only construct to rewrite, a catalog name to map, or a PostgreSQL-only
construct Redshift refuses.
"""

from __future__ import annotations

from sqlglot.tokenizer_core import Token, TokenType

from zetl_redshift.catalog import CATALOG_VIEWS
from zetl_redshift.dialect import POSTGRES_FUNCTIONS

# Called as name(...): Redshift's functions that PostgreSQL lacks or defines differently.
REDSHIFT_FUNCTIONS = frozenset({
    "getdate", "dateadd", "datediff", "datepart", "date_part", "convert_timezone", "nvl", "nvl2",
    "decode", "listagg", "median", "len", "charindex", "strtol", "json_extract_path_text",
    "json_parse", "is_valid_json", "is_valid_json_array", "trunc", "months_between",
    "add_months", "version", "json_extract_array_element_text", "json_array_length",
    "regexp_replace",
})  # fmt: skip
# Anywhere: Redshift-only words, and PostgreSQL-only ones Redshift refuses.
KEYWORDS = frozenset({
    "sysdate", "approximate", "top", "qualify", "super", "identity", "diststyle", "distkey",
    "sortkey", "encode", "interleaved", "binding", "max", "varbyte", "conflict", "returning",
    "lateral", "filter", "collate", "values", "array", "json", "jsonb", "uuid", "serial",
    "bigserial", "smallserial", "money", "inet", "cidr", "xml", "hstore", "bit", "int4range",
    "int8range", "numrange", "tsrange", "tstzrange", "daterange", "distinct",
})  # fmt: skip
# The Redshift-only words among them: a statement holding one is rewritten even when it reads
# only the catalog (SELECT getdate() reads no table at all).
REDSHIFT_WORDS = (REDSHIFT_FUNCTIONS - {"version", "date_part", "decode", "trunc"}) | frozenset({
    "sysdate", "approximate", "top", "qualify", "super", "identity", "diststyle", "distkey",
    "sortkey", "encode", "interleaved", "binding", "varbyte", "trunc", "decode",
})  # fmt: skip
OPERATORS = frozenset({
    TokenType.L_BRACKET, TokenType.ARROW, TokenType.DARROW, TokenType.HASH_ARROW,
    TokenType.DHASH_ARROW, TokenType.LR_ARROW, TokenType.AT_GT, TokenType.LT_AT,
    TokenType.PLACEHOLDER,
})  # fmt: skip


def redshift_words(tokens: list[Token]) -> set[str]:
    """The Redshift-only words of a statement (date_part counts with an unquoted datepart)."""
    found = set()
    for index, token in enumerate(tokens):
        word = token.text.lower()
        if word in REDSHIFT_WORDS or (
            word == "date_part"
            and index + 2 < len(tokens)
            and tokens[index + 2].token_type != TokenType.STRING
        ):
            found.add(word)
    return found


def needs_tree(tokens: list[Token]) -> bool:
    """Whether the statement holds a token of a construct to rewrite, map or refuse. A dotted
    name counts: `s.a` is SUPER navigation unless `s` is a table of the statement."""
    for index, token in enumerate(tokens):
        word = token.text.lower()
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        called = following is not None and following.token_type == TokenType.L_PAREN
        if called and (word in REDSHIFT_FUNCTIONS or word in POSTGRES_FUNCTIONS):
            return True
        if word in KEYWORDS or word in CATALOG_VIEWS or token.token_type in OPERATORS:
            return True
        if token.token_type == TokenType.DOT:
            return True
    return False
