"""Set-based apply: many changes to the same keys inside one batch end as the source has them."""

from __future__ import annotations

import random

from services.replicator.tests.support import Query, execute, same_as_source
from tests.support import running, wait_for
from zetl_replicator.config import ReplicatorConfig


def test_net_change_per_key_within_one_batch(config: ReplicatorConfig, replica: Query) -> None:
    src = config.source_url
    execute(
        src,
        "CREATE TABLE t (id int PRIMARY KEY, v int, big text)",
        # out of line, uncompressed: updates that leave it alone send it as "unchanged"
        "ALTER TABLE t ALTER COLUMN big SET STORAGE EXTERNAL",
        "CREATE TABLE pairs (a int, b int, v text, PRIMARY KEY (a, b))",
        "INSERT INTO t SELECT g, g, CASE WHEN g <= 3 THEN repeat('toast-', 5000) END"
        " FROM generate_series(1, 20) g",
        "INSERT INTO pairs SELECT g, g, 'p' FROM generate_series(1, 5) g",
    )
    with running(config):
        execute(
            src,
            "BEGIN;"
            # insert then updates: one insert of the last version
            " INSERT INTO t VALUES (100, 1, 'a'); UPDATE t SET v = 2 WHERE id = 100;"
            " UPDATE t SET big = 'b' WHERE id = 100;"
            # insert then delete: nothing
            " INSERT INTO t VALUES (101, 1, 'x'); DELETE FROM t WHERE id = 101;"
            # delete then insert again: an upsert
            " DELETE FROM t WHERE id = 4; INSERT INTO t VALUES (4, 44, 'again');"
            # existing rows: updates with TOASTed values left unchanged, twice
            " UPDATE t SET v = 10 WHERE id = 1; UPDATE t SET v = v + 1 WHERE id = 1;"
            # key change of an existing row with an unchanged TOASTed value
            " UPDATE t SET id = 200 WHERE id = 2;"
            # key change of a row inserted in the same batch, then an update of the new key
            " INSERT INTO t VALUES (102, 5, 'k'); UPDATE t SET id = 103 WHERE id = 102;"
            " UPDATE t SET v = 6 WHERE id = 103;"
            # rows inserted with a TOASTed value, then updated without touching it
            " INSERT INTO t VALUES (104, 1, repeat('toast-', 5000));"
            " UPDATE t SET v = 2 WHERE id = 104;"
            " INSERT INTO t VALUES (105, 1, repeat('toast-', 5000));"
            " UPDATE t SET id = 106 WHERE id = 105;"
            # a key freed by a key change is taken by another row
            " UPDATE t SET id = 300 WHERE id = 5; UPDATE t SET id = 5 WHERE id = 6;"
            # composite keys
            " UPDATE pairs SET b = 10 WHERE a = 1; DELETE FROM pairs WHERE a = 2;"
            " INSERT INTO pairs VALUES (2, 2, 'back'); UPDATE pairs SET v = 'q' WHERE a = 3;"
            " COMMIT",
            "UPDATE t SET v = 7 WHERE id = 103",
            "DELETE FROM t WHERE id = 200",
            "INSERT INTO t VALUES (200, 0, NULL)",
            "UPDATE t SET big = NULL WHERE id = 3",
        )
        wait_for(lambda: same_as_source(config, "t", "pairs"), "the replica to match the source")
        assert replica("SELECT v, big FROM public.t WHERE id = 103") == [(7, "k")]
        assert replica(
            "SELECT id, big = repeat('toast-', 5000) FROM public.t WHERE id IN (104, 106)"
            " ORDER BY id"
        ) == [(104, True), (106, True)]
        assert replica("SELECT v, big = repeat('toast-', 5000) FROM public.t WHERE id = 1") == [
            (11, True)
        ]
        counts = dict(
            (r[0], r[1]) for r in replica("SELECT table_name, rows_applied FROM zetl.table_state")
        )
        assert counts == {"t": 23, "pairs": 4}  # one per source change


def test_random_changes_to_few_keys(config: ReplicatorConfig) -> None:
    """Many small transactions hitting few keys land in shared batches: net change per key."""
    src = config.source_url
    execute(src, "CREATE TABLE t (id int PRIMARY KEY, v int, note text)")
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    statements = []
    for _ in range(400):
        key, other = rng.randint(1, 30), rng.randint(1, 30)
        statements.append(
            rng.choice(
                [
                    f"INSERT INTO t VALUES ({key}, {other}, md5('{key}')) ON CONFLICT DO NOTHING",
                    f"UPDATE t SET v = v + {other} WHERE id = {key}",
                    f"UPDATE t SET note = note || 'x', v = 0 WHERE id = {key}",
                    f"DELETE FROM t WHERE id = {key}",
                    f"UPDATE t SET id = {other} WHERE id = {key}"
                    f" AND NOT EXISTS (SELECT 1 FROM t WHERE id = {other})",
                ]
            )
        )
    with running(config):
        for start in range(0, len(statements), 8):  # transactions of 8 statements
            execute(src, "BEGIN;" + ";".join(statements[start : start + 8]) + "; COMMIT")
        wait_for(lambda: same_as_source(config, "t"), f"the replica to match (seed {seed})")
