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
"""

from __future__ import annotations

from dataclasses import dataclass


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


def translate(sql: str) -> Forward | ZeroEtlCommand:
    """What to do with one statement text from a client (see the module's docstring)."""
    return Forward(sql)  # the dialect rules replace this pass-through
