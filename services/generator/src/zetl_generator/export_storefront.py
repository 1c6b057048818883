"""The storefront export in the production format (publisher, game, transaction and
transaction_detail CSVs), clean or with the defects the real export has (``--messy``).

Rows are written as they are made, with only a bounded window of recent sales kept for
refunds, so a file of any size takes the same memory. The same seed gives the same files.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TextIO

from zetl_generator import world

REFUND_WINDOW = 1_000  # recent sales a refund may refund
MISMATCH_RATE = 0.005  # share of messy sale headers whose total disagrees with the lines


@dataclass(frozen=True)
class Entity:
    code: str
    name: str
    spellings: tuple[str, ...]  # every name the export gives it (duplicates included)
    codes: tuple[str, ...]  # every id the export gives it


@dataclass(frozen=True)
class Sale:
    code: str
    customer: str
    currency: str
    lines: list[tuple[Entity, Entity, str, str, Decimal, Decimal]]


def quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


class CsvFile:
    """A CSV in the export's style: names always quoted, and (like the real export) possibly
    no newline after the last row."""

    def __init__(self, handle: TextIO, header: str, final_newline: bool) -> None:
        self.handle, self.final_newline = handle, final_newline
        handle.write(header)
        self.rows = 0

    def row(self, *fields: str) -> None:
        self.handle.write("\n" + ",".join(fields))
        self.rows += 1

    def close(self) -> None:
        if self.final_newline:
            self.handle.write("\n")


class StorefrontExport:
    def __init__(self, seed: int, messy: bool) -> None:
        self.rng, self.messy = random.Random(seed), messy

    # --- how values are written ---------------------------------------------------------------

    def date_text(self, value: date, defect: str | None = None) -> str:
        """ISO, or (messy) in one of three formats, sometimes missing or impossible."""
        if not self.messy:
            return value.isoformat()
        roll = self.rng.random()
        if defect == "missing" or (defect is None and roll < 0.03):
            return ""
        if defect == "impossible" or (defect is None and roll < 0.05):
            return f"{value.year}-{self.rng.choice((4, 6, 9, 11)):02d}-31"  # 31st of a 30-day month
        return self.rng.choice(
            (value.isoformat(), value.strftime("%m/%d/%Y"), value.strftime("%Y/%m/%d"))
        )

    def timestamp_text(self, value: datetime) -> str:
        if not self.messy:
            return value.strftime("%Y-%m-%dT%H:%M:%SZ")
        formats = ("%Y-%m-%dT%H:%M:%SZ", "%Y/%m/%d %H:%M:%S", "%m-%d-%Y %H:%M")
        return value.strftime(self.rng.choice(formats))

    def name_text(self, name: str) -> str:
        if self.messy and self.rng.random() < 0.05:
            return quoted(name + " ")  # stray whitespace inside the quotes
        return quoted(name)

    def reference(self, entity: Entity) -> str:
        """An id, or (messy) any of its ids or names, in any spelling the source used."""
        if not self.messy:
            return entity.code
        roll = self.rng.random()
        if roll < 0.2:
            return quoted(self.rng.choice(entity.spellings))
        return self.rng.choice(entity.codes) if roll < 0.3 else entity.code

    # --- the catalogue ------------------------------------------------------------------------

    def write_publishers(self, out: CsvFile, count: int) -> list[Entity]:
        # distinct names, or the loader would rightly merge two publishers into one
        names = [f"{word} {kind}" for word in _PUBLISHER_WORDS for kind in _PUBLISHER_KINDS]
        self.rng.shuffle(names)
        canonical = []
        for number in range(1, count + 1):
            name = names[number - 1] if number <= len(names) else f"Publisher {number}"
            country = self.rng.choice(list(world.COUNTRIES))
            spellings, codes = [name], [f"P{number:03d}"]
            out.row(codes[0], self.name_text(name), country)
            if self.messy and (number == 1 or self.rng.random() < 0.25):  # spelled again
                duplicate = self.rng.choice((name.upper(), f"{name} Corp", f"{name}, Ltd."))
                spellings.append(duplicate)
                codes.append(f"P{count + number:03d}")
                out.row(codes[-1], self.name_text(duplicate), country)
            canonical.append(Entity(codes[0], name, tuple(spellings), tuple(codes)))
        return canonical

    def write_games(self, out: CsvFile, count: int) -> list[Entity]:
        canonical = []
        for number in range(1, count + 1):
            title = f"{self.rng.choice(_TITLE_WORDS)} {self.rng.choice(_TITLE_NOUNS)} {number}"
            released = date(2015, 1, 1) + timedelta(days=self.rng.randint(0, 3650))
            genre = self.rng.choice(world.GENRES)
            spellings, codes = [title], [f"G{number:03d}"]
            # every defect class shows even in a small export: the first games carry them
            defect = {1: "missing", 2: "impossible"}.get(number)
            out.row(codes[0], self.name_text(title), self.date_text(released, defect), genre)
            if self.messy and (number == 3 or self.rng.random() < 0.1):  # same date and genre
                spellings.append(title.upper())
                codes.append(f"G{count + number:03d}")
                out.row(codes[-1], quoted(title.upper()), released.isoformat(), genre)
            canonical.append(Entity(codes[0], title, tuple(spellings), tuple(codes)))
        return canonical

    # --- the transactions ---------------------------------------------------------------------

    def sales_lines(
        self, games: list[Entity], publishers: list[Entity], region: str
    ) -> list[tuple[Entity, Entity, str, str, Decimal, Decimal]]:
        lines = []
        for _ in range(self.rng.choices((1, 2, 3), (60, 30, 10))[0]):
            game_index = self.rng.randrange(len(games))
            platform = self.rng.choice(world.PLATFORMS)
            # a game's publisher depends on the platform it is sold on
            publisher = publishers[
                (game_index + world.PLATFORMS.index(platform) // 3) % len(publishers)
            ]
            gross = self.rng.choice(world.PRICES)
            lines.append(
                (games[game_index], publisher, region, platform, gross, world.platform_fee(gross))
            )
        return lines

    def transactions(
        self, lines: int, customers: int, games: list[Entity], publishers: list[Entity]
    ) -> Iterator[
        tuple[
            str,
            str,
            datetime,
            str,
            Decimal,
            str,
            list[tuple[Entity, Entity, str, str, Decimal, Decimal]],
        ]
    ]:
        """Headers with their lines until ``lines`` lines were made: (code, type, time,
        currency, reported total, customer, lines)."""
        recent: deque[Sale] = deque(maxlen=REFUND_WINDOW)
        made, number, now = 0, 0, datetime(2025, 1, 1, tzinfo=UTC)
        while made < lines:
            number += 1
            now += timedelta(seconds=self.rng.randint(1, 600))
            code, roll = f"T{number:04d}", self.rng.random()
            if roll < 0.08 and recent:  # refund an earlier sale of the same customer, once
                sale = recent[self.rng.randrange(len(recent))]
                recent.remove(sale)
                body = [(g, p, r, pl, -gross, -fee) for g, p, r, pl, gross, fee in sale.lines]
                yield (
                    code,
                    "refund",
                    now,
                    sale.currency,
                    sum((line[4] for line in body), Decimal(0)),
                    sale.customer,
                    body,
                )
            elif roll < 0.12:  # a payout to publishers
                body = [
                    (
                        self.rng.choice(games),
                        self.rng.choice(publishers),
                        "NA",
                        "PC",
                        -world.money(self.rng, 50, 500),
                        Decimal(0),
                    )
                    for _ in range(self.rng.randint(1, 2))
                ]
                yield (
                    code,
                    "payout",
                    now,
                    "USD",
                    sum((line[4] for line in body), Decimal(0)),
                    "PLATFORM",
                    body,
                )
            else:
                customer = f"CUST-{1001 + self.rng.randrange(customers)}"
                region, currency = world.COUNTRIES[self.rng.choice(list(world.COUNTRIES))]
                body = self.sales_lines(games, publishers, region)
                total = sum((line[4] for line in body), Decimal(0))
                if self.messy and (number == 5 or self.rng.random() < MISMATCH_RATE):
                    total += Decimal("10.00")  # the header disagrees with its lines
                recent.append(Sale(code, customer, currency, body))
                yield code, "sale", now, currency, total, customer, body
            made += len(body)

    def write(self, out_dir: Path, lines: int) -> dict[str, int]:
        out_dir.mkdir(parents=True, exist_ok=True)
        with ExitStack() as stack:

            def open_csv(name: str, header: str, final_newline: bool) -> CsvFile:
                handle = stack.enter_context(
                    (out_dir / name).open("w", encoding="utf-8", newline="")
                )
                csv_file = CsvFile(handle, header, final_newline or not self.messy)
                stack.callback(csv_file.close)
                return csv_file

            publisher_csv = open_csv("publisher.csv", "publisher_id,name,country", False)
            game_csv = open_csv("game.csv", "game_id,title,release_date,genre", True)
            header_csv = open_csv(
                "transaction.csv",
                "transaction_id,txn_type,txn_ts,currency,total_amount,customer_ref",
                False,
            )
            line_csv = open_csv(
                "transaction_detail.csv",
                "transaction_id,line_no,game_ref,publisher_ref,region,platform,"
                "gross_amount,platform_fee,net_amount",
                True,
            )
            publishers = self.write_publishers(publisher_csv, max(6, lines // 100_000))
            games = self.write_games(game_csv, max(9, lines // 5_000))
            customers = max(9, lines // 5)
            for code, kind, at, currency, total, customer, body in self.transactions(
                lines, customers, games, publishers
            ):
                header_csv.row(
                    code, kind, self.timestamp_text(at), currency, f"{total:.2f}", customer
                )
                for number, (game, publisher, region, platform, gross, fee) in enumerate(body, 1):
                    line_csv.row(
                        code,
                        str(number),
                        self.reference(game),
                        self.reference(publisher),
                        region,
                        platform,
                        f"{gross:.2f}",
                        f"{fee:.2f}",
                        f"{gross - fee:.2f}",
                    )
            return {
                "publisher.csv": publisher_csv.rows,
                "game.csv": game_csv.rows,
                "transaction.csv": header_csv.rows,
                "transaction_detail.csv": line_csv.rows,
            }


_PUBLISHER_WORDS = (
    "Northwind",
    "Globex",
    "Kairo",
    "Bluepeak",
    "Ironleaf",
    "Starlight",
    "Umbra",
    "Pinecone",
)
_PUBLISHER_KINDS = ("Publishing", "Interactive", "Games", "Studios", "Entertainment")
_TITLE_WORDS = (
    "Neon",
    "Crypt",
    "Sky",
    "Pocket",
    "Moon",
    "Pixel",
    "Echo",
    "Iron",
    "Star",
    "Dungeon",
)
_TITLE_NOUNS = ("Drift", "Ranch", "Harbor", "Tactics", "Paradox", "Delver", "Forge", "Crows")
