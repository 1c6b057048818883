"""The replica database's options that change what is applied (``zetl database set``)."""

from __future__ import annotations

from services.replicator.tests.support import Query, count, dev, execute, table_state, zetl
from tests.support import running, wait_for
from zetl_replicator.config import ReplicatorConfig
from zetl_replicator.ops.verify import verify

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
        wait_for(  # the views follow within a sample
            lambda: (
                [(table_state(config, n) or ("",))[0] for n in ("public.t", "public.u")]
                == ["Synced", "Synced"]
            ),
            "t and u Synced in the view",
        )


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


def has_history_columns(replica: Query, table: str) -> bool:
    schema, _, name = table.partition(".")
    found = replica(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = "
        f"'{schema}' AND table_name = '{name}' AND column_name = '_record_is_active'"
    )
    return bool(found[0][0])


# Incompressible, so stored out of line: an UPDATE that leaves it sends no value for it.
TOASTED = "(SELECT string_agg(md5(i::text), '') FROM generate_series(1, 2000) AS i)"


def test_history_mode_keeps_every_version_with_active_flag_and_times(
    config: ReplicatorConfig, replica: Query
) -> None:
    src = config.source_url
    execute(
        src,
        "CREATE TABLE t (id int PRIMARY KEY, v text, n int, big text)",
        f"INSERT INTO t VALUES (1, 'a', 1, {TOASTED}), (2, 'b', 2, NULL)",
        "CREATE TABLE u (id int PRIMARY KEY)",
        "INSERT INTO u VALUES (1), (2)",
    )
    with running(config):
        wait_for(lambda: count(replica, "public.t") == 2, "t copied")
        result = zetl(config, "database", "set", "HISTORY_MODE", "=", "TRUE")
        assert result.returncode == 0, result.stdout
        # Existing tables are copied again, in history form.
        wait_for(
            lambda: (
                has_history_columns(replica, "public.t")
                and has_history_columns(replica, "public.u")
                and (table_state(config, "public.t") or ("",))[0] == "Synced"
                and (table_state(config, "public.u") or ("",))[0] == "Synced"
            ),
            "re-copied with history columns",
        )
        assert replica(
            "SELECT id, _record_is_active, _record_create_time IS NOT NULL,"
            " _record_delete_time FROM public.t ORDER BY id"
        ) == [(1, True, True, None), (2, True, True, None)]
        execute(
            src,
            "INSERT INTO t VALUES (3, 'c', 3, NULL)",
            "UPDATE t SET v = 'a2' WHERE id = 1",  # big unchanged: not sent
            "DELETE FROM t WHERE id = 2",
            "UPDATE t SET id = 10 WHERE id = 3",  # a key change
            "UPDATE t SET n = 5 WHERE id = 1",
            "TRUNCATE u",
        )
        execute(src, "INSERT INTO u VALUES (2)")
        wait_for(lambda: count(replica, "public.t") == 6, "every version of t", timeout=90)
        wait_for(lambda: count(replica, "public.u") == 3, "every version of u", timeout=90)
        versions = replica(
            "SELECT id, v, n, md5(big) = md5(" + TOASTED + "), _record_is_active,"
            " _record_delete_time IS NULL FROM public.t"
            " ORDER BY id, _record_create_time, _record_is_active"
        )
        # One version per source change: the copy's, then each change's.
        assert sorted(versions) == sorted(
            [
                (1, "a", 1, True, False, False),
                (1, "a2", 1, True, False, False),
                (1, "a2", 5, True, True, True),
                (2, "b", 2, None, False, False),
                (3, "c", 3, None, False, False),
                (10, "c", 3, None, True, True),
            ]
        ), versions
        # An update closes the old version when the new one starts.
        assert replica(
            "SELECT count(*) FROM public.t AS old JOIN public.t AS new ON new.id = old.id"
            " AND new._record_create_time = old._record_delete_time WHERE old.id = 1"
        ) == [(2,)]
        assert replica(
            "SELECT id, _record_is_active FROM public.u ORDER BY id, _record_is_active"
        ) == [(1, False), (2, False), (2, True)]
        # Monitoring says which tables are in history mode.
        wait_for(
            lambda: (
                dev(
                    config,
                    "SELECT table_name, is_history_mode FROM svv_integration_table_state"
                    f" WHERE target_database = '{config.replica_database}' ORDER BY table_name",
                )
                == [("t", True), ("u", True)]
                and dev(
                    config,
                    "SELECT is_history_mode FROM svv_integration"
                    f" WHERE target_database = '{config.replica_database}'",
                )
                == [(True,)]
            ),
            "is_history_mode in the views",
        )
        # verify compares the active versions with the source.
        report = verify(config)
        assert report.ok, report
        assert {c.table: c.replica_rows for c in report.checks} == {"public.t": 2, "public.u": 1}


def test_turning_history_mode_off_recopies_tables_without_history(
    config: ReplicatorConfig, replica: Query
) -> None:
    src = config.source_url
    execute(src, "CREATE TABLE t (id int PRIMARY KEY, v text)", "INSERT INTO t VALUES (1, 'a')")
    with running(config):
        wait_for(lambda: count(replica, "public.t") == 1, "t copied")
        assert zetl(config, "database", "set", "HISTORY_MODE", "TRUE").returncode == 0
        wait_for(lambda: has_history_columns(replica, "public.t"), "history form")
        execute(src, "UPDATE t SET v = 'b' WHERE id = 1")
        wait_for(lambda: count(replica, "public.t") == 2, "two versions")
        assert zetl(config, "database", "set", "HISTORY_MODE", "FALSE").returncode == 0
        wait_for(
            lambda: (
                not has_history_columns(replica, "public.t")
                and (table_state(config, "public.t") or ("",))[0] == "Synced"
            ),
            "copied again without history",
        )
        assert replica("SELECT id, v FROM public.t") == [(1, "b")]
        execute(src, "UPDATE t SET v = 'c' WHERE id = 1", "INSERT INTO t VALUES (2, 'x')")
        wait_for(lambda: count(replica, "public.t", "v IN ('c', 'x')") == 2, "streams as before")
        assert count(replica, "public.t") == 2
        report = verify(config)
        assert report.ok, report
