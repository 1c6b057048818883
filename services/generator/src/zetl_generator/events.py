"""The events the workload writes: each one a single source transaction that keeps every
business rule (docs in the package README; the checks are in ``zetl.schema.rules``).

Entities are picked by a random probe into the primary-key range, not ``ORDER BY random()``,
so the choice comes from the run's seeded RNG: the same seed and the same starting state
give the same rows. Business time is the present by default (a data team compares the live
data against today); a simulated clock makes the timestamps reproducible too.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import psycopg2.extensions
from faker import Faker
from psycopg2.extras import execute_values

from zetl_generator import world
from zetl_generator.mix import EventKind

Row = tuple[Any, ...]
DEFAULT_START = datetime(2025, 1, 1, tzinfo=UTC)  # where a simulated clock starts
MEAN_EVENT_GAP_S = 30.0  # simulated seconds between two events


class Clock(Protocol):
    """Business time: never before what the database already holds, and only moving on, so
    an event never precedes the one it depends on (a deposit, the KYC approval before it)."""

    now: datetime

    def tick(self, rng: random.Random) -> datetime: ...


@dataclass
class PresentClock:
    """The wall clock (UTC), nudged a millisecond on where it would not move forward."""

    now: datetime

    def tick(self, rng: random.Random) -> datetime:
        self.now = max(datetime.now(UTC), self.now + timedelta(milliseconds=1))
        return self.now


@dataclass
class SimulatedClock:
    """A random gap per event from the run's RNG: the same seed gives the same timestamps."""

    now: datetime

    def tick(self, rng: random.Random) -> datetime:
        self.now += timedelta(milliseconds=1 + int(rng.expovariate(1 / MEAN_EVENT_GAP_S) * 1000))
        return self.now


LATEST_BUSINESS_TIME = """
SELECT max(t) FROM (
    SELECT max(signed_up_at) FROM customer UNION ALL
    SELECT max(kyc_approved_at) FROM customer UNION ALL
    SELECT max(redeemed_at) FROM affiliate UNION ALL
    SELECT max(occurred_at) FROM store_transaction UNION ALL
    SELECT max(occurred_at) FROM wallet_transaction
) AS latest(t)
"""


def start_clock(cur: psycopg2.extensions.cursor, simulated: bool) -> Clock:
    """The run's clock, starting after the newest business timestamp in the database."""
    cur.execute(LATEST_BUSINESS_TIME)
    row = cur.fetchone()
    latest = row[0] if row and row[0] else None
    if simulated:
        return SimulatedClock(max(latest, DEFAULT_START) if latest else DEFAULT_START)
    return PresentClock(latest or datetime.now(UTC))


class Storefront:
    """Writes one event at a time through a cursor whose transaction the caller owns."""

    def __init__(
        self,
        cur: psycopg2.extensions.cursor,
        rng: random.Random,
        fake: Faker,
        clock: Clock,
    ) -> None:
        self.cur, self.rng, self.fake, self.clock = cur, rng, fake, clock

    # --- picking rows -------------------------------------------------------------------------

    def pick(self, table: str, columns: str, where: str = "TRUE", params: Row = ()) -> Row | None:
        """One row of ``table`` matching ``where``, at a random point of its id range, locked
        until the event commits.

        Several generators may write to one source (a second `zetl generate`, a container
        being replaced): the lock makes another one skip the row instead of acting on what it
        read before this event committed (an erased player's name written back by a profile
        update, one referral code redeemed twice). NO KEY UPDATE leaves foreign-key checks of
        rows that reference this one free to proceed.
        """
        probe = self.rng.random()
        # The probe is a scalar subquery cast to bigint so it becomes an index condition on
        # the primary key: the pick costs the same on a table of any size.
        self.cur.execute(
            f"""
            SELECT {columns} FROM {table} AS t
            WHERE ({where}) AND t.id >= (
                SELECT min(id) + floor(%s * (max(id) - min(id) + 1))::bigint FROM {table}
            )
            ORDER BY t.id LIMIT 1 FOR NO KEY UPDATE OF t SKIP LOCKED
            """,
            (*params, probe),
        )
        row = self.cur.fetchone()
        if row is None:  # nothing at or after the probe: wrap around to the start
            self.cur.execute(
                f"SELECT {columns} FROM {table} AS t WHERE ({where})"
                " ORDER BY t.id LIMIT 1 FOR NO KEY UPDATE OF t SKIP LOCKED",
                params,
            )
            row = self.cur.fetchone()
        return row

    def scalar(self, query: str, params: Row = ()) -> Any:
        self.cur.execute(query, params)
        row = self.cur.fetchone()
        return row[0] if row else None

    # --- the catalogue ------------------------------------------------------------------------

    def ensure_catalog(self, publishers: int = 8, games: int = 40) -> None:
        """An empty source gets publishers, games and listings to sell; a loaded one keeps its
        own. Some games ship under another publisher on some platform, as in the real data."""
        if self.scalar("SELECT EXISTS (SELECT 1 FROM game_listing)"):
            return
        publisher_ids = [
            self.scalar(
                "INSERT INTO publisher (publisher_code, name, country_code) VALUES (%s, %s, %s)"
                " RETURNING id",
                (
                    world.new_code(self.rng, "PUB-", 6),
                    self.fake.company(),
                    self.rng.choice(list(world.COUNTRIES)),
                ),
            )
            for _ in range(publishers)
        ]
        for _ in range(games):
            game_id = self.scalar(
                "INSERT INTO game (game_code, title, release_date, genre) VALUES (%s, %s, %s, %s)"
                " RETURNING id",
                (
                    world.new_code(self.rng, "GAME-", 6),
                    self.fake.catch_phrase().title(),
                    self.fake.date_between(datetime(2015, 1, 1), DEFAULT_START),
                    self.rng.choice(world.GENRES),
                ),
            )
            home = self.rng.choice(publisher_ids)
            for platform in self.rng.sample(world.PLATFORMS, self.rng.randint(1, 3)):
                publisher = home if self.rng.random() < 0.8 else self.rng.choice(publisher_ids)
                self.cur.execute(
                    "INSERT INTO game_listing (game_id, platform, publisher_id) VALUES (%s, %s, %s)"
                    " ON CONFLICT DO NOTHING",
                    (game_id, platform, publisher),
                )

    # --- the events ---------------------------------------------------------------------------

    def apply(self, kind: EventKind) -> EventKind:
        """Write one event of ``kind``; when nothing qualifies for it (no pending KYC, say),
        a signup is written instead. Returns the kind actually written."""
        now = self.clock.tick(self.rng)
        if getattr(self, kind.value)(now):
            return kind
        self.signup(now)
        return EventKind.SIGNUP

    def signup(self, now: datetime) -> bool:
        country = self.rng.choice(list(world.COUNTRIES))
        affiliate = None
        if self.rng.random() < 0.3:  # some players arrive with a referral code
            affiliate = self.pick("affiliate", "t.id", "t.redeemed_at IS NULL")
        affiliate_id = affiliate[0] if affiliate else None
        self.cur.execute(
            """
            INSERT INTO customer (customer_code, display_name, email, country_code, kyc_status,
                                  signed_up_at, referred_by_affiliate_id)
            VALUES (%s, %s, %s, %s, 'pending', %s, %s)
            """,
            (
                world.new_code(self.rng, "CUST-"),
                self.fake.name(),
                self.fake.email(),
                country,
                now,
                affiliate_id,
            ),
        )
        if affiliate_id is not None:
            self.cur.execute(
                "UPDATE affiliate SET redeemed_at = %s WHERE id = %s", (now, affiliate_id)
            )
        return True

    def kyc_decision(self, now: datetime) -> bool:
        customer = self.pick("customer", "t.id", "t.kyc_status = 'pending'")
        if customer is None:
            return False
        approved = self.rng.random() < 0.9
        self.cur.execute(
            "UPDATE customer SET kyc_status = %s, kyc_approved_at = %s WHERE id = %s",
            ("approved" if approved else "rejected", now if approved else None, customer[0]),
        )
        return True

    def affiliate_code(self, now: datetime) -> bool:
        self.cur.execute(
            "INSERT INTO affiliate (affiliate_code, origin) VALUES (%s, %s)",
            (world.new_code(self.rng, "AFF-", 8), self.rng.choice(world.AFFILIATE_ORIGINS)),
        )
        return True

    def _approved_customer(self, where: str = "TRUE") -> tuple[int, str] | None:
        row = self.pick(
            "customer",
            "t.id, t.country_code",
            f"t.kyc_status = 'approved' AND t.country_code IS NOT NULL AND ({where})",
        )
        if row is None:
            return None
        self.cur.execute("SELECT 1 FROM customer WHERE id = %s FOR UPDATE", (row[0],))
        return row[0], world.COUNTRIES.get(row[1], ("NA", "USD"))[1]

    def _wallet(
        self, customer_id: int, currency: str, kind: str, amount: Decimal, now: datetime
    ) -> None:
        self.cur.execute(
            """
            INSERT INTO wallet_transaction (wallet_transaction_code, customer_id,
                transaction_type, occurred_at, currency, amount)
            VALUES (%s, %s, %s, %s, %s, %s)
            """,
            (world.new_code(self.rng, "W"), customer_id, kind, now, currency, amount),
        )

    def deposit(self, now: datetime) -> bool:
        customer = self._approved_customer()
        if customer is None:
            return False
        self._wallet(*customer, "deposit", world.money(self.rng, 10, 500), now)
        return True

    def withdrawal(self, now: datetime) -> bool:
        customer = self._approved_customer(
            "EXISTS (SELECT 1 FROM wallet_transaction w WHERE w.customer_id = t.id)"
        )
        if customer is None:
            return False
        balance = self.scalar(
            "SELECT coalesce(sum(amount), 0) FROM wallet_transaction"
            " WHERE customer_id = %s AND currency = %s",
            customer,
        )
        if balance < world.CENT:
            return False
        amount = min(balance, world.money(self.rng, 5, 300))
        self._wallet(*customer, "withdrawal", -amount, now)
        return True

    def _store_transaction(
        self,
        kind: str,
        now: datetime,
        currency: str,
        customer_id: int | None,
        lines: list[tuple[int, str, int, str, Decimal, Decimal]],
        refunds: int | None = None,
    ) -> None:
        """A header and its lines (game, platform, publisher, region, gross, fee); the header
        total is the sum of the lines, as a clean source writes it."""
        total = sum((gross for *_, gross, _ in lines), Decimal(0))
        transaction_id = self.scalar(
            """
            INSERT INTO store_transaction (transaction_code, transaction_type, occurred_at,
                currency, total_amount, customer_id, refunded_transaction_id)
            VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id
            """,
            (world.new_code(self.rng, "T"), kind, now, currency, total, customer_id, refunds),
        )
        execute_values(
            self.cur,
            """
            INSERT INTO store_transaction_line (transaction_id, line_number, transaction_type,
                currency, game_id, platform, publisher_id, region, gross_amount, fee_amount,
                net_amount) VALUES %s
            """,
            [
                (
                    transaction_id,
                    number,
                    kind,
                    currency,
                    game,
                    platform,
                    publisher,
                    region,
                    gross,
                    fee,
                    gross - fee,
                )
                for number, (game, platform, publisher, region, gross, fee) in enumerate(lines, 1)
            ],
        )

    def purchase(self, now: datetime) -> bool:
        customer = self.pick("customer", "t.id, t.country_code", "t.country_code IS NOT NULL")
        if customer is None:
            return False
        region, currency = world.COUNTRIES.get(customer[1], ("NA", "USD"))
        count = self.rng.choices((1, 2, 3, 4), (60, 25, 10, 5))[0]
        first = self.pick("game_listing", "t.id")
        if first is None:
            return False
        self.cur.execute(
            "SELECT game_id, platform, publisher_id FROM game_listing WHERE id >= %s"
            " ORDER BY id LIMIT %s",
            (first[0], count),
        )
        lines = []
        for game, platform, publisher in self.cur.fetchall():
            gross = self.rng.choice(world.PRICES)
            lines.append((game, platform, publisher, region, gross, world.platform_fee(gross)))
        self._store_transaction("sale", now, currency, customer[0], lines)
        return True

    def refund(self, now: datetime) -> bool:
        """A full refund of an earlier sale, to the same customer, at most once per sale."""
        sale = self.pick(
            "store_transaction",
            "t.id, t.customer_id, t.currency",
            "t.transaction_type = 'sale' AND t.customer_id IS NOT NULL AND NOT EXISTS"
            " (SELECT 1 FROM store_transaction r WHERE r.refunded_transaction_id = t.id)",
        )
        if sale is None:
            return False
        sale_id, customer_id, currency = sale
        self.cur.execute("SELECT 1 FROM store_transaction WHERE id = %s FOR UPDATE", (sale_id,))
        self.cur.execute(
            "SELECT game_id, platform, publisher_id, region, gross_amount, fee_amount"
            " FROM store_transaction_line WHERE transaction_id = %s ORDER BY line_number",
            (sale_id,),
        )
        lines = [(*keys, region, -gross, -fee) for *keys, region, gross, fee in self.cur.fetchall()]
        self._store_transaction("refund", now, currency, customer_id, lines, refunds=sale_id)
        return True

    def payout(self, now: datetime) -> bool:
        """Money paid out to one publisher for up to three of its listings."""
        listing = self.pick("game_listing", "t.publisher_id")
        if listing is None:
            return False
        self.cur.execute(
            "SELECT game_id, platform, publisher_id FROM game_listing WHERE publisher_id = %s"
            " ORDER BY id LIMIT 3",
            listing,
        )
        lines = [
            (game, platform, publisher, "GLOBAL", -world.money(self.rng, 50, 500), Decimal(0))
            for game, platform, publisher in self.cur.fetchall()
        ]
        self._store_transaction("payout", now, "USD", None, lines)
        return True

    def profile_update(self, now: datetime) -> bool:
        customer = self.pick("customer", "t.id", "t.display_name IS NOT NULL")
        if customer is None:
            return False
        self.cur.execute(
            "UPDATE customer SET display_name = %s, email = %s WHERE id = %s",
            (self.fake.name(), self.fake.email(), customer[0]),
        )
        return True

    def erasure(self, now: datetime) -> bool:
        """A player's right to erasure: a player with no money history is deleted (with the
        referral code they redeemed); one with history keeps the rows finance needs, without
        name or email."""
        customer = self.pick(
            "customer", "t.id, t.referred_by_affiliate_id", "t.display_name IS NOT NULL"
        )
        if customer is None:
            return False
        customer_id, affiliate_id = customer
        has_history = self.scalar(
            "SELECT EXISTS (SELECT 1 FROM store_transaction WHERE customer_id = %s)"
            " OR EXISTS (SELECT 1 FROM wallet_transaction WHERE customer_id = %s)",
            (customer_id, customer_id),
        )
        if has_history:
            self.cur.execute(
                "UPDATE customer SET display_name = NULL, email = NULL WHERE id = %s",
                (customer_id,),
            )
            return True
        self.cur.execute("DELETE FROM customer WHERE id = %s", (customer_id,))
        if affiliate_id is not None:
            self.cur.execute("DELETE FROM affiliate WHERE id = %s", (affiliate_id,))
        return True
