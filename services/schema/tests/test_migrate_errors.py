"""A failed migration reports its own error and leaves the database as it was."""

import psycopg2
import pytest

from zetl.errors import DataError
from zetl.schema.migrate import upgrade

pytestmark = pytest.mark.docker


def test_a_failing_migration_names_the_real_error_and_applies_nothing(source_url: str) -> None:
    with psycopg2.connect(source_url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE game (squatter int)")  # the migration's own table, taken
    with pytest.raises(DataError, match='relation "game" already exists'):
        upgrade(source_url)
    with psycopg2.connect(source_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('publisher'), to_regnamespace('zetl_load')")
        assert cur.fetchone() == (None, None)
    with psycopg2.connect(source_url) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE game")
    upgrade(source_url)  # and the lock was released with the failed session
