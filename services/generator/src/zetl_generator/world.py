"""The vocabulary the generated storefront draws from: countries, platforms, prices, codes."""

from __future__ import annotations

import random
from decimal import Decimal

# country → (sales region, currency the player pays and keeps the wallet in)
COUNTRIES: dict[str, tuple[str, str]] = {
    "US": ("NA", "USD"),
    "CA": ("NA", "USD"),
    "BR": ("LATAM", "USD"),
    "GB": ("EU", "GBP"),
    "DE": ("EU", "EUR"),
    "FR": ("EU", "EUR"),
    "ES": ("EU", "EUR"),
    "NL": ("EU", "EUR"),
    "JP": ("APAC", "USD"),
    "AU": ("APAC", "USD"),
}
PLATFORMS = ("PC", "PS5", "Xbox", "Switch")
GENRES = ("Action", "Simulation", "Racing", "Roguelike", "Strategy", "RPG", "Adventure", "Puzzle")
AFFILIATE_ORIGINS = ("discord", "twitch", "youtube", "reddit", "newsletter")
PRICES = tuple(Decimal(p) for p in ("4.99", "9.99", "14.99", "19.99", "29.99", "39.99", "59.99"))
PLATFORM_FEE_RATE = Decimal("0.30")
CENT = Decimal("0.01")

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread


def new_code(rng: random.Random, prefix: str, length: int = 10) -> str:
    """A source identifier such as ``CUST-7KQ2M9XH3A``: random, so restarts never collide,
    and drawn from the run's RNG, so the same seed gives the same codes."""
    return prefix + "".join(rng.choice(_CODE_ALPHABET) for _ in range(length))


def platform_fee(gross: Decimal) -> Decimal:
    return (gross * PLATFORM_FEE_RATE).quantize(CENT)


def money(rng: random.Random, low: int, high: int) -> Decimal:
    """A whole-cent amount between ``low`` and ``high`` currency units."""
    return Decimal(rng.randint(low * 100, high * 100)) / 100
