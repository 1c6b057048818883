"""Select-list aliases referenced later in the select list or in WHERE ("lateral column alias
references"), which Redshift resolves and PostgreSQL does not.

redshift_connector's own metadata queries rely on it (``SELECT n.nspname AS TABLE_SCHEM ... WHERE
TABLE_SCHEM LIKE $1``, ``... END AS IS_AUTOINCREMENT, IS_AUTOINCREMENT AS IS_GENERATEDCOLUMN``).
Catalog SQL is otherwise PostgreSQL and is not regenerated, so the reference is replaced in the
text: each alias named by a bare name becomes the aliased expression, parenthesised. A
select-list item that is just a column of the same name is left alone (the name is a column).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot.tokenizer_core import Token, TokenType

CLAUSE_ENDS = frozenset({"group", "order", "limit", "having", "union", "intersect", "except"})


@dataclass
class _Select:
    depth: int
    item_start: int = 0  # the token the select-list item starts at; -1 after FROM
    aliases: dict[str, str] = field(default_factory=dict)
    in_where: bool = False


def resolve_where_aliases(sql: str, tokens: list[Token]) -> str:
    """``sql`` with select-list aliases used in WHERE replaced by their expressions."""
    edits: list[tuple[int, int, str]] = []
    depth = 0
    selects: list[_Select] = []
    for index, token in enumerate(tokens):
        kind, word = token.token_type, token.text.lower()
        first_word = word.split(" ")[0] if word else word
        current = selects[-1] if selects and selects[-1].depth == depth else None
        if kind == TokenType.L_PAREN:
            depth += 1
            continue
        if kind == TokenType.R_PAREN:
            if current is not None:
                selects.pop()
            depth -= 1
            continue
        if kind == TokenType.SELECT:
            if current is not None:
                selects.pop()
            selects.append(_Select(depth, item_start=index + 1))
            continue
        if current is None:
            continue
        listing = current.item_start >= 0
        if listing and kind in (TokenType.FROM, TokenType.COMMA):
            current.aliases |= _aliases(sql, tokens, [(current.item_start, index)])
            current.item_start = index + 1 if kind == TokenType.COMMA else -1
            continue
        if listing and word in current.aliases and _bare(tokens, index):
            edits.append((token.start, token.end + 1, f"({current.aliases[word]})"))
            continue
        if kind == TokenType.WHERE:
            current.in_where = True
        elif first_word in CLAUSE_ENDS:
            current.in_where = False
        elif current.in_where and word in current.aliases and _bare(tokens, index):
            edits.append((token.start, token.end + 1, f"({current.aliases[word]})"))
    for start, end, replacement in reversed(edits):
        sql = sql[:start] + replacement + sql[end:]
    return sql


def _aliases(sql: str, tokens: list[Token], items: list[tuple[int, int]]) -> dict[str, str]:
    found = {}
    for start, end in items:
        if end - start < 3 or tokens[end - 2].token_type != TokenType.ALIAS:
            continue
        alias = tokens[end - 1]
        expression = sql[tokens[start].start : tokens[end - 3].end + 1]
        if expression.split(".")[-1].strip('"').lower() != alias.text.lower():
            found[alias.text.lower()] = expression
    return found


def _bare(tokens: list[Token], index: int) -> bool:
    """A name on its own: not qualified, not qualifying, not called."""
    before = tokens[index - 1] if index else None
    after = tokens[index + 1] if index + 1 < len(tokens) else None
    if tokens[index].token_type not in (TokenType.VAR, TokenType.IDENTIFIER):
        return False
    if before is not None and before.token_type == TokenType.DOT:
        return False
    return after is None or after.token_type not in (TokenType.DOT, TokenType.L_PAREN)
