"""BackgroundSpool: rows encoded on a worker thread, copied in on the main one."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest

from zetl_loader.sink import BackgroundSpool


@pytest.mark.docker
def test_the_spooled_rows_arrive_as_written(source_url: str) -> None:
    rows = [(1, "plain"), (2, 'a "quoted", text\nover two lines'), (3, None)]
    with psycopg2.connect(source_url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE spooled (n int, t text)")
        with BackgroundSpool(iter(rows)) as spool:
            spool.copy_into(cur, "spooled", ("n", "t"))
        cur.execute("SELECT n, t FROM spooled ORDER BY n")
        assert cur.fetchall() == rows


@pytest.mark.docker
def test_an_error_on_the_worker_is_raised_by_copy_into(source_url: str) -> None:
    def failing() -> Iterator[tuple[Any, ...]]:
        yield (1, "fine")
        raise ValueError("normalization bug")

    with psycopg2.connect(source_url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE spooled (n int, t text)")
        with (
            pytest.raises(ValueError, match="normalization bug"),
            BackgroundSpool(failing()) as spool,
        ):
            spool.copy_into(cur, "spooled", ("n", "t"))


def test_leaving_early_stops_the_worker() -> None:
    endless = ((n, "row") for n in itertools.count())
    with pytest.raises(RuntimeError, match="the main thread failed"), BackgroundSpool(endless):
        raise RuntimeError("the main thread failed")
    # The worker stopped (joined in __exit__): the generator is no longer being consumed.
    before = next(endless)[0]
    assert next(endless)[0] == before + 1
