"""The replica database's options that change what is applied (``zetl database set``)."""

from __future__ import annotations

from tests.replicator.conftest import running, wait_for
from tests.replicator.test_commands import zetl
from tests.replicator.test_fidelity import count, table_state
from tests.replicator.test_replication import Query, execute
from zetl_replicator.config import ReplicatorConfig

LONG = 70000  # characters: over VARCHAR(65535), the replica type of text


def test_truncatecolumns_cuts_values_over_the_column_size_instead_of_failing_the_table(
    config: ReplicatorConfig, replica: Query
) -> None:
    src = config.source_url
    execute(src, "CREATE TABLE t (id int PRIMARY KEY, v text)", "INSERT INTO t VALUES (1, 'a')")
    with running(config) as replicator:
        wait_for(lambda: count(replica, "public.t") == 1, "t copied")
        result = zetl(config, "database", "set", "TRUNCATECOLUMNS", "=", "TRUE")
        assert result.returncode == 0, result.stdout
        wait_for(lambda: replicator.truncatecolumns, "TRUNCATECOLUMNS picked up")
        execute(
            src,
            f"INSERT INTO t VALUES (2, repeat('x', {LONG}))",
            f"UPDATE t SET v = repeat('y', {LONG}) WHERE id = 1",
            "INSERT INTO t VALUES (3, 'short')",
        )
        wait_for(lambda: count(replica, "public.t") == 3, "the changes applied")
        assert replica("SELECT id, length(v), left(v, 1) FROM public.t ORDER BY id") == [
            (1, 65535, "y"),
            (2, 65535, "x"),
            (3, 5, "s"),
        ]
        # The initial copy cuts them too: a new table holding a long value.
        execute(
            src,
            "CREATE TABLE u (id int PRIMARY KEY, v varchar)",
            f"INSERT INTO u VALUES (1, repeat('z', {LONG}))",
        )
        wait_for(lambda: count(replica, "public.u", "length(v) = 65535") == 1, "u copied, cut")
        assert (table_state(config, "public.t") or ("",))[0] == "Synced"
        assert (table_state(config, "public.u") or ("",))[0] == "Synced"


def test_without_truncatecolumns_an_update_over_the_column_size_fails_the_table(
    config: ReplicatorConfig, replica: Query
) -> None:
    # An UPDATE once went through a cast to VARCHAR(65535), which cuts silently in Postgres.
    src = config.source_url
    execute(
        src,
        "CREATE TABLE t (id int PRIMARY KEY, v text)",
        "CREATE TABLE other (id int PRIMARY KEY)",
        "INSERT INTO t VALUES (1, 'a')",
    )
    with running(config):
        wait_for(lambda: count(replica, "public.t") == 1, "t copied")
        execute(src, f"UPDATE t SET v = repeat('y', {LONG}) WHERE id = 1")
        wait_for(lambda: (table_state(config, "public.t") or ("",))[0] == "Failed", "t Failed")
        assert "65,535" in ((table_state(config, "public.t") or ("", ""))[1] or "")
        assert replica("SELECT v FROM public.t") == [("a",)]
        execute(src, "INSERT INTO other VALUES (1)")  # the other tables still stream
        wait_for(lambda: count(replica, "public.other") == 1, "other streams")
