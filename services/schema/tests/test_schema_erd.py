"""docs/erd.md is the live migrated schema: the ERD cannot drift from the migrations."""

from __future__ import annotations

from pathlib import Path

import pytest

from zetl.schema.erd import mermaid, reflect
from zetl.schema.migrate import upgrade

pytestmark = pytest.mark.docker

ERD = Path(__file__).resolve().parents[3] / "docs" / "erd.md"


def test_docs_erd_matches_the_migrated_schema(source_url: str) -> None:
    upgrade(source_url)
    generated = mermaid(reflect(source_url))
    assert ERD.read_text(encoding="utf-8") == generated, "docs/erd.md is stale: run `make erd`"


def test_the_erd_shows_every_table_and_relation(source_url: str) -> None:
    upgrade(source_url)
    schema = reflect(source_url)
    assert "store_transaction_line" in schema.tables["public"]
    assert "zetl_load.quarantine" in schema.tables["zetl_load"]
    lines_to_headers = [
        r
        for r in schema.relations
        if (r.child, r.parent) == ("store_transaction_line", "store_transaction")
    ]
    assert [r.columns for r in lines_to_headers] == [
        ("transaction_id", "transaction_type", "currency")
    ]
    text = mermaid(schema)
    assert "customer |o--o| affiliate" not in text  # the parent is on the left
    assert 'affiliate |o--o| customer : "referred_by_affiliate_id"' in text
