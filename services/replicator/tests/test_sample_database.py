"""A sample database shaped like the public ones teams try first (a film rental store in the
manner of pagila): declarative partitions, enums, domains, arrays and tsvector. Every table is
reported as AWS's zero-ETL would report it."""

from __future__ import annotations

from services.replicator.tests.support import Query, columns, count, dev, execute, states
from tests.support import running, wait_for
from zetl_replicator.config import ReplicatorConfig
from zetl_replicator.ops.verify import verify

SAMPLE = (
    "CREATE TYPE mpaa_rating AS ENUM ('G', 'PG', 'PG-13', 'R', 'NC-17')",
    "CREATE DOMAIN year AS integer CONSTRAINT year_check CHECK (VALUE >= 1901 AND VALUE <= 2155)",
    "CREATE TABLE actor (actor_id serial PRIMARY KEY, first_name text NOT NULL,"
    " last_name text NOT NULL, last_update timestamptz NOT NULL DEFAULT now())",
    "CREATE TABLE category (category_id serial PRIMARY KEY, name text NOT NULL)",
    "CREATE TABLE film (film_id serial PRIMARY KEY, title text NOT NULL, description text,"
    " release_year year, rating mpaa_rating DEFAULT 'G', special_features text[],"
    " fulltext tsvector NOT NULL)",
    "CREATE TABLE film_text (film_id int PRIMARY KEY, title text, special_features text[],"
    " fulltext tsvector)",
    "CREATE TABLE film_actor (actor_id int REFERENCES actor, film_id int REFERENCES film,"
    " PRIMARY KEY (actor_id, film_id))",
    "CREATE TABLE payment (payment_id serial, customer_id int NOT NULL,"
    " amount numeric(5,2) NOT NULL, payment_date timestamptz NOT NULL,"
    " PRIMARY KEY (payment_date, payment_id)) PARTITION BY RANGE (payment_date)",
    "CREATE TABLE payment_p2022_01 PARTITION OF payment"
    " FOR VALUES FROM ('2022-01-01 00:00+00') TO ('2022-02-01 00:00+00')",
    "CREATE TABLE payment_p2022_02 PARTITION OF payment"
    " FOR VALUES FROM ('2022-02-01 00:00+00') TO ('2022-03-01 00:00+00')",
    "CREATE TABLE staff_log (id int, note text)",  # no primary key
    "INSERT INTO actor (first_name, last_name)"
    " VALUES ('PENELOPE', 'GUINESS'), ('NICK', 'WAHLBERG')",
    "INSERT INTO category (name) VALUES ('Action'), ('Animation')",
    "INSERT INTO film (title, release_year, rating, special_features, fulltext) VALUES"
    " ('ACADEMY DINOSAUR', 2006, 'PG', '{Deleted Scenes,Behind the Scenes}',"
    " to_tsvector('english', 'academy dinosaur epic drama'))",
    "INSERT INTO film_text SELECT film_id, title, special_features, fulltext FROM film",
    "INSERT INTO film_actor VALUES (1, 1), (2, 1)",
    "INSERT INTO payment (customer_id, amount, payment_date) VALUES"
    " (1, 2.99, '2022-01-05 10:00+00'), (2, 0.99, '2022-02-07 11:00+00')",
)

# As AWS reports them: Failed for declarative partitioning (the parent and each partition),
# for a user-defined type (enum, domain), for no primary key; the others replicate.
EXPECTED = {
    "public.actor": ("Synced", None),
    "public.category": ("Synced", None),
    "public.film_text": ("Synced", None),
    "public.film_actor": ("Synced", None),
    "public.film": ("Failed", "unsupported data type"),
    "public.payment": ("Failed", "partitioned table"),
    "public.payment_p2022_01": ("Failed", "partition of public.payment"),
    "public.payment_p2022_02": ("Failed", "partition of public.payment"),
    "public.staff_log": ("Failed", "no primary key"),
}


def test_sample_database_reports_every_table_as_aws_would(
    config: ReplicatorConfig, replica: Query
) -> None:
    execute(config.source_url, *SAMPLE)
    with running(config):
        wait_for(lambda: count(replica, "public.film_actor") == 2, "the copy")
        found = states(replica)
        assert set(found) == set(EXPECTED)
        for table, (state, reason) in EXPECTED.items():
            assert found[table][0] == state, (table, found[table])
            assert (reason or "") in (found[table][1] or ""), (table, found[table])
        film = found["public.film"][1] or ""
        assert "release_year" in film and "rating" in film  # the domain and the enum
        types = dict(columns(replica, "public.film_text"))
        assert types["fulltext"] == "character varying(65535)"  # tsvector: VARCHAR(65535)
        assert types["special_features"] == "text[]"  # an array: SUPER
        wait_for(
            lambda: (
                dev(
                    config,
                    "SELECT total_tables_replicated, total_tables_failed FROM svv_integration"
                    f" WHERE target_database = '{config.replica_database}'",
                )
                == [(4, 5)]
            ),
            "svv_integration's counts",
        )
        assert verify(config).ok
