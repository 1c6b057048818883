"""Schema changes reach the replica; what cannot be applied waits in ResyncRequired."""

from __future__ import annotations

import pytest

from services.replicator.tests.support import Query, columns, execute, states
from tests.support import running, wait_for
from zetl_replicator.apply.schema import is_widening
from zetl_replicator.config import ReplicatorConfig
from zetl_replicator.ops.verify import verify


def test_added_dropped_widened_columns_and_new_tables(
    config: ReplicatorConfig, replica: Query
) -> None:
    src = config.source_url
    execute(
        src,
        "CREATE TABLE t (id int PRIMARY KEY, qty int, code varchar(10), old text)",
        "INSERT INTO t VALUES (1, 1, 'a', 'x')",
    )
    with running(config):
        # Each change is followed by a write: pgoutput describes a table again (Relation) only
        # before its next change, and a drop plus an add seen at once could be a rename.
        execute(
            src,
            "ALTER TABLE t ADD COLUMN price numeric(12,2)",
            "UPDATE t SET price = 1.25 WHERE id = 1",
            "ALTER TABLE t DROP COLUMN old",
            "UPDATE t SET qty = 1 WHERE id = 1",
            "ALTER TABLE t ALTER COLUMN qty TYPE bigint",
            "ALTER TABLE t ALTER COLUMN code TYPE varchar(40)",
            "INSERT INTO t VALUES (2, 9000000000, repeat('c', 40), 2.50)",
        )
        wait_for(lambda: replica("SELECT count(*) FROM public.t") == [(2,)], "new row")
        assert columns(replica, "public.t") == [
            ("id", "integer"),
            ("qty", "bigint"),
            ("code", "character varying(65535)"),  # AWS maps varchar(n) to VARCHAR(65535)
            ("price", "numeric(12,2)"),
        ]
        assert replica("SELECT id, qty, price::text FROM public.t ORDER BY id") == [
            (1, 1, "1.25"),
            (2, 9000000000, "2.50"),
        ]
        # A table created later joins the publication and is copied, rows made before included.
        execute(
            src,
            "CREATE TABLE later (id int PRIMARY KEY, v text)",
            "INSERT INTO later VALUES (1, 'before it was published')",
        )
        wait_for(lambda: states(replica).get("public.later", ("",))[0] == "Synced", "new table")
        execute(src, "INSERT INTO later VALUES (2, 'after')")
        wait_for(lambda: replica("SELECT count(*) FROM public.later") == [(2,)], "later rows")
        assert verify(config).ok


def test_unapplicable_change_needs_resync_while_others_stream(
    config: ReplicatorConfig, replica: Query, caplog: pytest.LogCaptureFixture
) -> None:
    src = config.source_url
    execute(
        src,
        "CREATE TABLE t (id int PRIMARY KEY, v text)",
        "CREATE TABLE other (id int PRIMARY KEY)",
        "INSERT INTO t VALUES (1, '10')",
    )
    with running(config):
        execute(
            src,
            "ALTER TABLE t ALTER COLUMN v TYPE int USING v::int",  # not a widening
            "INSERT INTO t VALUES (2, 20)",
            "INSERT INTO other VALUES (1)",
        )
        # ResyncRequired, then re-copied by itself: the captured DDL runs discovery at once.
        wait_for(
            lambda: any(
                r.getMessage() == "table needs a resync"
                and "not a widening" in str(getattr(r, "reason", ""))
                for r in caplog.records
            ),
            "ResyncRequired",
        )
        wait_for(lambda: replica("SELECT count(*) FROM public.other") == [(1,)], "others stream")
        wait_for(lambda: states(replica)["public.t"][0] == "Synced", "resync")
        assert replica("SELECT id, v FROM public.t ORDER BY id") == [(1, 10), (2, 20)]
        execute(src, "INSERT INTO t VALUES (3, 30)")
        wait_for(lambda: replica("SELECT count(*) FROM public.t") == [(3,)], "after resync")
        assert verify(config).ok


@pytest.mark.parametrize(
    ("old", "new", "widening"),
    [
        ("integer", "bigint", True),
        ("bigint", "integer", False),
        ("character varying(10)", "character varying(40)", True),
        ("character varying(40)", "character varying(10)", False),
        ("character varying(10)", "text", True),
        ("numeric(10,2)", "numeric(12,2)", True),
        ("numeric(12,2)", "numeric(12,4)", False),
        ("numeric(12,2)", "numeric", True),
        ("real", "double precision", True),
        ("text", "integer", False),
    ],
)
def test_widening_rules(old: str, new: str, widening: bool) -> None:
    assert is_widening(old, new) is widening
