"""The checkpoints as data: names, reuse of the shared rules, and their plain SQL on real
Postgres (a freshly migrated source: every check finds nothing to complain about)."""

from __future__ import annotations

import subprocess
import sys

import psycopg2
import pytest

from zetl.schema.migrate import upgrade
from zetl.schema.rules import RULES
from zetl_quality.checks import CHECKPOINTS, Target


@pytest.mark.parametrize("target", list(Target))
@pytest.mark.parametrize("name", list(CHECKPOINTS))
def test_check_names_are_unique_within_a_checkpoint(name: str, target: Target) -> None:
    _, checks = CHECKPOINTS[name].build(target)
    names = [c.name for c in checks]
    assert len(names) == len(set(names)) > 0


def test_source_integrity_reuses_the_business_rules_and_the_model() -> None:
    _, checks = CHECKPOINTS["source_integrity"].build(Target.LOCAL)
    by_name = {c.name: c for c in checks}
    for rule in RULES:
        assert by_name[f"rule {rule.name}"].plain_sql() == rule.violations_sql.strip()
    assert "unique customer(customer_code)" in by_name
    assert "reference wallet_transaction(customer_id) -> customer(id)" in by_name
    assert "check wallet_transaction.sign_by_type" in by_name
    assert "check store_transaction_line.net_is_gross_minus_fee" in by_name
    # The composite (id, type, currency) key is implied by the primary key: not checked twice.
    assert not any(n.startswith("unique store_transaction(currency") for n in by_name)


def test_marts_read_the_replica_where_each_target_has_it() -> None:
    local = {c.name: c for c in CHECKPOINTS["marts"].build(Target.LOCAL)[1]}
    aws = {c.name: c for c in CHECKPOINTS["marts"].build(Target.AWS)[1]}
    name = "traceable daily_player_transactions.customer_id -> customer.id"
    assert "raw_transactions_public.customer" in local[name].plain_sql()
    assert "raw_transactions.public.customer" in aws[name].plain_sql()


@pytest.mark.docker
def test_every_source_check_runs_as_plain_sql_on_a_migrated_source(source_url: str) -> None:
    upgrade(source_url)
    _, checks = CHECKPOINTS["source_integrity"].build(Target.LOCAL)
    with psycopg2.connect(source_url) as conn, conn.cursor() as cur:
        for check in checks:
            cur.execute(check.plain_sql())
            assert cur.fetchall() == [], check.name


def test_the_cli_module_does_not_import_great_expectations() -> None:
    code = "import sys, zetl_quality.cli;sys.exit(1 if 'great_expectations' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
