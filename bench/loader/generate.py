"""A messy export of any size, in the production format, for the loader benchmark.

Streams rows to disk (flat memory) with the reference export's defect classes at realistic
rates: mixed date and timestamp formats, duplicate spellings, references by name, stray
whitespace, total mismatches, refunds and payouts, and about 0.3% rows that must be
quarantined (non-numeric amounts, unknown references, truncated rows).
Usage: python -m bench.loader.generate OUT_DIR LINES [--seed N]
"""

from __future__ import annotations

import argparse
import csv
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

PLATFORMS = ("PC", "PS5", "Switch", "Xbox")
REGIONS = ("NA", "EU", "APAC")
CURRENCIES = ("USD", "EUR", "GBP")
WORDS = (
    "star", "neon", "crypt", "pocket", "moon", "echo", "pixel", "dungeon", "sky", "tidal",
    "orbit", "ember", "glass", "hollow", "iron", "silent", "crimson", "paper", "frost", "velvet",
)  # fmt: skip
NOUNS = (
    "forge", "drift", "crows", "ranch", "harbor", "delver", "tactics", "aster", "paradox",
    "lantern", "garden", "league",
)  # fmt: skip
START = datetime(2024, 1, 1, tzinfo=UTC)


def date_text(rng: random.Random, day: datetime) -> str:
    style = rng.random()
    if style < 0.6:
        return day.strftime("%Y-%m-%d")
    if style < 0.8:
        return day.strftime("%m/%d/%Y")
    if style < 0.99:
        return day.strftime("%Y/%m/%d")
    return rng.choice(["", "2024-09-31", "2023-02-30"])  # missing or impossible


def timestamp_text(rng: random.Random, moment: datetime) -> str:
    style = rng.random()
    if style < 0.7:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if style < 0.9:
        return moment.strftime("%Y/%m/%d %H:%M:%S")
    return moment.strftime("%m-%d-%Y %H:%M")


def spelling(rng: random.Random, name: str) -> str:
    """Another spelling of the same name, as a reference or a duplicate row would hold it."""
    return rng.choice([name.upper(), name.lower(), f"{name} ", f" {name}"])


def write_catalogue(
    out: Path, rng: random.Random, publishers: int, games: int
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    pubs = [(f"P{i:04d}", f"{rng.choice(WORDS).title()} {rng.choice(NOUNS).title()} {i}")
            for i in range(1, publishers + 1)]  # fmt: skip
    with (out / "publisher.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["publisher_id", "name", "country"])
        for code, name in pubs:
            writer.writerow([code, name, rng.choice(["US", "GB", "JP", "CA", "SE"])])
        for n, (_, name) in enumerate(rng.sample(pubs, publishers // 10), start=publishers + 1):
            writer.writerow([f"P{n:04d}", f"{name.upper()} INC", "US"])  # a duplicate spelling
    titles = [(f"G{i:05d}", f"{rng.choice(WORDS).title()} {rng.choice(NOUNS).title()} {i}")
              for i in range(1, games + 1)]  # fmt: skip
    with (out / "game.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["game_id", "title", "release_date", "genre"])
        for code, title in titles:
            day = START - timedelta(days=rng.randrange(3000))
            shown = spelling(rng, title) if rng.random() < 0.05 else title
            genre = rng.choice(["Action", "RPG", "Puzzle"])
            writer.writerow([code, shown, date_text(rng, day), genre])
        for n, (_, title) in enumerate(rng.sample(titles, games // 20), start=games + 1):
            writer.writerow([f"G{n:05d}", title.upper(), "2020-01-01", "Action"])
    return pubs, titles


def line_amounts(rng: random.Random, kind: str) -> tuple[Decimal, Decimal]:
    gross = Decimal(rng.choice(["9.99", "14.99", "19.99", "29.99", "59.99"]))
    fee = (gross * Decimal("0.30")).quantize(Decimal("0.01"))
    if kind == "refund":
        return -gross, -fee
    if kind == "payout":
        return -gross, Decimal("0.00")
    return gross, fee


def write_transactions(
    out: Path,
    rng: random.Random,
    lines_wanted: int,
    pubs: list[tuple[str, str]],
    titles: list[tuple[str, str]],
) -> int:
    customers = max(10, lines_wanted // 10)
    with (
        (out / "transaction.csv").open("w", newline="", encoding="utf-8") as headers_file,
        (out / "transaction_detail.csv").open("w", newline="", encoding="utf-8") as lines_file,
    ):
        headers, lines = csv.writer(headers_file), csv.writer(lines_file)
        headers.writerow(
            ["transaction_id", "txn_type", "txn_ts", "currency", "total_amount", "customer_ref"]
        )
        lines.writerow(
            ["transaction_id", "line_no", "game_ref", "publisher_ref", "region", "platform",
             "gross_amount", "platform_fee", "net_amount"]
        )  # fmt: skip
        written, number = 0, 0
        recent_sales: list[tuple[str, str]] = []
        while written < lines_wanted:
            number += 1
            code = f"T{number:08d}"
            roll = rng.random()
            kind = "sale" if roll < 0.9 else "refund" if roll < 0.97 else "payout"
            count = min(rng.choice((1, 1, 2, 2, 3)), lines_wanted - written)
            total = Decimal(0)
            for line_no in range(1, count + 1):
                gross, fee = line_amounts(rng, kind)
                total += gross
                game_code, title = rng.choice(titles)
                pub_code, pub_name = rng.choice(pubs)
                game_ref = spelling(rng, title) if rng.random() < 0.2 else game_code
                publisher_ref = pub_name if rng.random() < 0.1 else pub_code
                region, platform = rng.choice(REGIONS), rng.choice(PLATFORMS)
                row = [code, line_no, game_ref, publisher_ref, region, platform]
                row += [gross, fee, gross - fee]
                defect = rng.random()
                if defect < 0.001:
                    row[6] = "n/a"
                elif defect < 0.002:
                    row[2] = "G999999"
                elif defect < 0.003:
                    row = row[:5]
                lines.writerow(row)
            written += count
            if rng.random() < 0.01:
                total += Decimal("10.00") if kind == "sale" else Decimal("-10.00")
            moment = START + timedelta(seconds=number * 17)
            customer, currency = f"CUST-{rng.randrange(customers)}", rng.choice(CURRENCIES)
            if kind == "payout":
                customer = "PLATFORM"
            elif kind == "refund" and recent_sales:
                customer, currency = rng.choice(recent_sales)  # refunds an earlier purchase
            else:
                recent_sales.append((customer, currency))
                del recent_sales[:-1000]  # bounded: the generator's memory stays flat
            headers.writerow([code, kind, timestamp_text(rng, moment), currency, total, customer])
    return number


def generate(out: Path, lines: int, seed: int = 7) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    pubs, titles = write_catalogue(out, rng, publishers=200, games=5000)
    write_transactions(out, rng, lines, pubs, titles)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("lines", type=int)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    generate(args.out, args.lines, args.seed)


if __name__ == "__main__":
    main()
