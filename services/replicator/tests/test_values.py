"""Types and values as zero-ETL replicates them (AWS's type map, its value limits, bytes not
characters, Redshift's collation), one test per rule, against real Postgres.

docs/replication.md lists each rule with AWS's behaviour, zetl's, and the test here.
"""

from __future__ import annotations

from services.replicator.tests.support import (
    Query,
    columns,
    copied_then_streamed,
    count,
    execute,
    table_state,
    zetl,
)
from tests.support import running, wait_for
from zetl_replicator.config import ReplicatorConfig
from zetl_replicator.ops.verify import verify
from zetl_replicator.source.types import cut_to_bytes


def failed_reason(config: ReplicatorConfig, table: str) -> str:
    """``table``'s reason once it is Failed (waits for it)."""
    wait_for(lambda: (table_state(config, table) or ("",))[0] == "Failed", f"{table} Failed")
    return (table_state(config, table) or ("", ""))[1] or ""


def test_more_types_replicate_in_aws_redshift_types(
    config: ReplicatorConfig, replica: Query
) -> None:
    src = config.source_url
    execute(
        src,
        "CREATE TABLE t (id int PRIMARY KEY, m8 macaddr8, nm name, lsn pg_lsn, ctid_copy tid,"
        " x8 xid8, jp jsonpath, ts txid_snapshot, ps pg_snapshot, rc refcursor,"
        " i2 int2vector, ov oidvector, b4 bit(4))",
        "INSERT INTO t VALUES (1, '08:00:2b:01:02:03:04:05', 'a name', '16/B374D848', '(3,7)',"
        " '12345678901', '$.a[*] ? (@ > 1)', '10:20:10,14,15', '10:20:10,14,15', 'cursor',"
        " '1 2 3', '23 25', B'1010')",
        "CREATE TABLE geometric (id int PRIMARY KEY, p point)",
    )
    with running(config):
        copied_then_streamed(src, replica)
        assert table_state(config, "public.t") == ("Synced", None)
        types = dict(columns(replica, "public.t"))
        assert types["m8"] == "character varying(23)"
        assert types["nm"] == "character varying(64)"
        assert types["lsn"] == "character varying(17)"
        assert types["ctid_copy"] == "character varying(23)"
        assert types["x8"] == "numeric(20,0)"
        for varchar in ("jp", "ts", "ps", "rc"):
            assert types[varchar] == "character varying(65535)", varchar
        assert types["i2"] == "int2vector" and types["ov"] == "oidvector"  # SUPER
        assert types["b4"] == "bit(4)"  # VARBYTE(4)
        assert replica("SELECT DISTINCT m8, lsn, ctid_copy, x8::text FROM public.t") == [
            ("08:00:2b:01:02:03:04:05", "16/B374D848", "(3,7)", "12345678901")
        ]
        assert "unsupported data type: p (point)" in failed_reason(config, "public.geometric")
        assert verify(config).ok


def test_intervals_mixing_months_with_days_or_time_fail_their_table(
    config: ReplicatorConfig, replica: Query
) -> None:
    src = config.source_url
    execute(
        src,
        "CREATE TABLE fine (id int PRIMARY KEY, i interval)",
        "INSERT INTO fine VALUES (1, '1 year 2 months'), (2, '3 days 04:05:06.5'), (3, '0')",
        "CREATE TABLE copied_mixed (id int PRIMARY KEY, i interval)",
        "INSERT INTO copied_mixed VALUES (1, '1 month 1 day')",
        "CREATE TABLE streamed_mixed (id int PRIMARY KEY, i interval)",
        "CREATE TABLE endless (id int PRIMARY KEY, i interval)",
        "INSERT INTO endless VALUES (1, 'infinity')",
    )
    with running(config):
        wait_for(lambda: count(replica, "public.fine") == 3, "fine copied")
        assert "mixing months with days" in failed_reason(config, "public.copied_mixed")
        assert "±infinity" in failed_reason(config, "public.endless")
        execute(src, "INSERT INTO fine VALUES (4, '-2 years')")
        execute(src, "INSERT INTO streamed_mixed VALUES (1, '2 days'), (2, '1 year 00:00:01')")
        assert "mixing months with days" in failed_reason(config, "public.streamed_mixed")
        wait_for(lambda: count(replica, "public.fine") == 4, "fine keeps streaming")
        assert table_state(config, "public.fine") == ("Synced", None)


def test_only_dates_after_294276_ad_fail_their_table(
    config: ReplicatorConfig, replica: Query
) -> None:
    """B.C. dates and years after 9999 replicate in a date column (Redshift's DATE reaches
    4713 BC to 294,276 AD); later dates and ±infinity fail the table."""
    src = config.source_url
    execute(
        src,
        "CREATE TABLE fine (id int PRIMARY KEY, d date)",
        "INSERT INTO fine VALUES (1, '0044-03-15 BC'), (2, '12000-01-01'), (3, '294276-12-31')",
        "CREATE TABLE late (id int PRIMARY KEY, d date)",
        "INSERT INTO late VALUES (1, '294277-01-01')",
        "CREATE TABLE streamed (id int PRIMARY KEY, d date)",
    )
    with running(config):
        wait_for(lambda: count(replica, "public.fine") == 3, "fine copied")
        assert "after 294,276 AD" in failed_reason(config, "public.late")
        execute(src, "INSERT INTO fine VALUES (4, '4713-01-01 BC')")
        execute(src, "INSERT INTO streamed VALUES (1, 'infinity')")
        assert "after 294,276 AD or ±infinity" in failed_reason(config, "public.streamed")
        wait_for(lambda: count(replica, "public.fine") == 4, "fine keeps streaming")
        assert table_state(config, "public.fine") == ("Synced", None)
        assert verify(config).ok


def test_values_over_65535_bytes_not_characters_fail_their_table(
    config: ReplicatorConfig, replica: Query
) -> None:
    """25,000 three-byte characters are 75,000 bytes: over Redshift's VARCHAR(65535) although
    under 65,535 characters; a CHAR(n) holds n bytes too."""
    src = config.source_url
    execute(
        src,
        "CREATE TABLE fits (id int PRIMARY KEY, v text, c char(4))",
        "INSERT INTO fits VALUES (1, repeat('é', 32767), 'éé')",  # 65,534 bytes; 4 bytes
        "CREATE TABLE multibyte (id int PRIMARY KEY, v text)",
        "CREATE TABLE copied (id int PRIMARY KEY, v text)",
        "INSERT INTO copied VALUES (1, repeat('€', 25000))",
        "CREATE TABLE chars (id int PRIMARY KEY, c char(4))",
    )
    with running(config):
        wait_for(lambda: count(replica, "public.fits") == 1, "fits copied")
        assert "over 65,535 bytes" in failed_reason(config, "public.copied")  # in the copy
        execute(src, "INSERT INTO multibyte VALUES (1, repeat('€', 25000))")
        assert "over 65,535 bytes" in failed_reason(config, "public.multibyte")
        execute(src, "INSERT INTO chars VALUES (1, 'ééé')")  # 3 characters, 6 bytes
        assert "over 4 bytes" in failed_reason(config, "public.chars")
        assert table_state(config, "public.fits") == ("Synced", None)
        assert replica("SELECT octet_length(v), c FROM public.fits") == [(65534, "éé  ")]


def test_truncatecolumns_cuts_by_bytes_on_a_character_boundary(
    config: ReplicatorConfig, replica: Query
) -> None:
    src = config.source_url
    execute(src, "CREATE TABLE other (id int PRIMARY KEY)")
    with running(config) as replicator:
        wait_for(lambda: count(replica, "public.other") == 0, "other copied")
        result = zetl(config, "database", "set", "TRUNCATECOLUMNS", "=", "TRUE")
        assert result.returncode == 0, result.stdout
        wait_for(lambda: replicator.truncatecolumns, "TRUNCATECOLUMNS picked up")
        execute(
            src,
            "CREATE TABLE t (id int PRIMARY KEY, v text, c char(3))",
            # 21,845 × '€' (3 bytes) + 'ab' = 65,537 bytes: cut to 65,535, 21,845 × '€'
            "INSERT INTO t VALUES (1, repeat('€', 21845) || 'ab', 'aéé')",
            # 32,768 × 'é' = 65,536 bytes: the last 'é' would be cut in two, so it goes
            "INSERT INTO t VALUES (2, repeat('é', 32768), 'éé')",
        )
        wait_for(lambda: count(replica, "public.t") == 2, "copied, cut")
        execute(src, "INSERT INTO t SELECT id + 2, v, c FROM t")  # the same values, streamed
        wait_for(lambda: count(replica, "public.t") == 4, "streamed, cut")
        assert replica(
            "SELECT id, octet_length(v), v = repeat('€', 21845), c FROM public.t ORDER BY id"
        ) == [
            (1, 65535, True, "aé "),  # CHAR(3): 3 bytes, padded to 3 characters here
            (2, 65534, False, "é  "),
            (3, 65535, True, "aé "),
            (4, 65534, False, "é  "),
        ]
        assert table_state(config, "public.t") == ("Synced", None)


def test_cut_to_bytes_keeps_whole_characters() -> None:
    assert cut_to_bytes("aé€😀", 1) == "a"
    assert cut_to_bytes("aé€😀", 2) == "a"  # é is 2 bytes: not cut in two
    assert cut_to_bytes("aé€😀", 6) == "aé€"
    assert cut_to_bytes("aé€😀", 9) == "aé€"
    assert cut_to_bytes("aé€😀", 10) == "aé€😀"
    short = "abc"
    assert cut_to_bytes(short, 100) is short


def test_replica_sorts_strings_as_redshift_does(config: ReplicatorConfig, replica: Query) -> None:
    """Redshift is UTF-8 and compares strings by their bytes, whatever the source's collation:
    upper case before lower case, accented letters after z."""
    src = config.source_url
    execute(
        src,
        "CREATE TABLE words (id int PRIMARY KEY, w text)",
        "INSERT INTO words VALUES (1, 'b'), (2, 'B'), (3, 'a'), (4, 'é'), (5, 'z'), (6, 'A')",
    )
    with running(config):
        wait_for(lambda: count(replica, "public.words") == 6, "copied")
        ordered = [r[0] for r in replica("SELECT w FROM public.words ORDER BY w")]
        assert ordered == ["A", "B", "a", "b", "z", "é"]
        assert replica("SELECT upper('é')") == [("É",)]  # case mapping still Unicode's
