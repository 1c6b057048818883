"""The players export: ``players.csv``, ``affiliates.csv`` and ``transactions.csv`` (wallet
deposits and withdrawals), obeying the same rules as the live workload: KYC before any
wallet movement, redeemed codes used by exactly one player, never withdrawing more than the
balance. The format is documented in the generator's README.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from faker import Faker

from zetl_generator import world

PLAYERS_HEADER = (
    "player_id",
    "name",
    "email",
    "country",
    "signup_ts",
    "kyc_status",
    "kyc_approved_ts",
    "affiliate_code",
)
AFFILIATES_HEADER = ("affiliate_code", "origin", "redeemed_ts")
WALLET_HEADER = ("transaction_id", "player_id", "txn_type", "txn_ts", "currency", "amount")
START = datetime(2025, 1, 1, tzinfo=UTC)


def iso(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""


@dataclass
class Player:
    code: str
    currency: str
    approved_at: datetime | None
    last_movement: datetime | None = None
    balance: Decimal = Decimal(0)


def write_players_export(out_dir: Path, rows: int, seed: int) -> dict[str, int]:
    """``rows`` players, ``rows`` affiliate codes and ``rows`` wallet transactions."""
    rng, fake = random.Random(seed), Faker()
    fake.seed_instance(seed)
    out_dir.mkdir(parents=True, exist_ok=True)

    affiliates = [
        [world.new_code(rng, "AFF-", 8), rng.choice(world.AFFILIATE_ORIGINS), ""]
        for _ in range(rows)
    ]
    unredeemed = list(range(rows))
    rng.shuffle(unredeemed)

    players: list[Player] = []
    signup = START
    with (out_dir / "players.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(PLAYERS_HEADER)
        for number in range(rows):
            signup += timedelta(seconds=rng.randint(60, 3600))
            country = rng.choice(list(world.COUNTRIES))
            status = rng.choices(("approved", "pending", "rejected"), (80, 12, 8))[0]
            approved = (
                signup + timedelta(hours=rng.uniform(0.1, 72)) if status == "approved" else None
            )
            affiliate = ""
            if unredeemed and rng.random() < 0.3:
                index = unredeemed.pop()
                affiliate = affiliates[index][0]
                affiliates[index][2] = iso(signup)
            code = f"CUST-{100001 + number}"
            writer.writerow(
                (
                    code,
                    fake.name(),
                    fake.email(),
                    country,
                    iso(signup),
                    status,
                    iso(approved),
                    affiliate,
                )
            )
            players.append(Player(code, world.COUNTRIES[country][1], approved))

    with (out_dir / "affiliates.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(AFFILIATES_HEADER)
        writer.writerows(affiliates)

    approved_players = [player for player in players if player.approved_at is not None]
    with (out_dir / "transactions.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(WALLET_HEADER)
        for number in range(rows if approved_players else 0):
            player = rng.choice(approved_players)
            after = player.last_movement or player.approved_at
            assert after is not None
            player.last_movement = after + timedelta(minutes=rng.randint(1, 600))
            if player.balance >= 1 and rng.random() < 0.4:
                kind, amount = "withdrawal", -min(player.balance, world.money(rng, 5, 300))
            else:
                kind, amount = "deposit", world.money(rng, 10, 500)
            player.balance += amount
            writer.writerow(
                (
                    f"W{number + 1:07d}",
                    player.code,
                    kind,
                    iso(player.last_movement),
                    player.currency,
                    f"{amount:.2f}",
                )
            )
    return {
        "players.csv": rows,
        "affiliates.csv": rows,
        "transactions.csv": rows if approved_players else 0,
    }
