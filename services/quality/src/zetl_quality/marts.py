"""The marts' contracts as the dbt project declares them, read from dbt's manifest.

A mart's YAML (transform/models/marts/<mart>.yml) holds, under ``meta: zetl_quality``:

- on the model: ``grain``, the columns one row stands for (its ``row_rules`` test reuses the
  same list through a YAML anchor);
- on a column: ``traces_to: <replica table>.<column>`` (every value exists in the replica)
  and ``min`` / ``max`` (a sign rule).

A model with a grain is a mart the ``marts`` checkpoint covers: adding a mart is its .sql and
its .yml, nothing here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zetl.dbt import manifest_path
from zetl.errors import ConfigError

META_KEY = "zetl_quality"


@dataclass(frozen=True)
class Trace:
    column: str
    table: str  # the replica's table (schema public)
    key: str


@dataclass(frozen=True)
class Sign:
    column: str
    low: float | None
    high: float | None


@dataclass(frozen=True)
class MartContract:
    name: str
    relation: str  # schema.table
    grain: tuple[str, ...]
    traces: tuple[Trace, ...]
    signs: tuple[Sign, ...]


def load_contracts(environ: Mapping[str, str] | None = None) -> list[MartContract]:
    """The contracts in the manifest ``zetl.dbt.manifest_path`` finds."""
    return read_contracts(manifest_path(environ))


def read_contracts(manifest: Path) -> list[MartContract]:
    """Every model of the manifest with a ``zetl_quality`` grain, by name."""
    try:
        nodes = json.loads(manifest.read_text(encoding="utf-8"))["nodes"]
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{manifest} is not a dbt manifest: {exc}") from exc
    contracts = [
        _contract(node)
        for node in nodes.values()
        if node.get("resource_type") == "model" and _meta(node).get("grain")
    ]
    return sorted(contracts, key=lambda c: c.name)


def _meta(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    """``meta: zetl_quality`` of a model or a column (under ``config:`` or not)."""
    meta = {**entry.get("meta", {}), **entry.get("config", {}).get("meta", {})}
    found = meta.get(META_KEY, {})
    return found if isinstance(found, Mapping) else {}


def _contract(node: Mapping[str, Any]) -> MartContract:
    name = str(node["name"])
    grain = _meta(node)["grain"]
    if not (isinstance(grain, list) and all(isinstance(c, str) for c in grain)):
        raise ConfigError(f"{name}: meta {META_KEY}.grain must be a list of column names")
    traces: list[Trace] = []
    signs: list[Sign] = []
    for column, entry in node.get("columns", {}).items():
        meta = _meta(entry)
        target = meta.get("traces_to")
        if target is not None:
            table, _, key = str(target).partition(".")
            if not (table and key):
                raise ConfigError(f"{name}.{column}: traces_to must be <table>.<column>")
            traces.append(Trace(column, table, key))
        low, high = _bound(name, column, meta, "min"), _bound(name, column, meta, "max")
        if low is not None or high is not None:
            signs.append(Sign(column, low, high))
    relation = f"{node.get('schema', 'analytics')}.{node.get('alias') or name}"
    return MartContract(name, relation, tuple(grain), tuple(traces), tuple(signs))


def _bound(mart: str, column: str, meta: Mapping[str, Any], which: str) -> float | None:
    value = meta.get(which)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{mart}.{column}: {META_KEY}.{which} must be a number, not {value!r}")
    return float(value) if isinstance(value, float) else int(value)
