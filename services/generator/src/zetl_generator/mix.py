"""The kinds of events the workload generator writes, and how often each happens."""

from __future__ import annotations

import random
from enum import StrEnum

from zetl.errors import ConfigError


class EventKind(StrEnum):
    SIGNUP = "signup"
    KYC_DECISION = "kyc_decision"
    AFFILIATE_CODE = "affiliate_code"
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    PURCHASE = "purchase"
    REFUND = "refund"
    PAYOUT = "payout"
    PROFILE_UPDATE = "profile_update"
    ERASURE = "erasure"


# Purchases dominate, as on a real storefront; erasures are rare but make deletes flow.
DEFAULT_WEIGHTS: dict[EventKind, float] = {
    EventKind.SIGNUP: 10,
    EventKind.KYC_DECISION: 8,
    EventKind.AFFILIATE_CODE: 3,
    EventKind.DEPOSIT: 10,
    EventKind.WITHDRAWAL: 5,
    EventKind.PURCHASE: 30,
    EventKind.REFUND: 4,
    EventKind.PAYOUT: 2,
    EventKind.PROFILE_UPDATE: 4,
    EventKind.ERASURE: 1,
}


class Mix:
    """Weighted choice of the next event kind, reproducible from the caller's RNG."""

    def __init__(self, weights: dict[EventKind, float]) -> None:
        self.kinds = [kind for kind, weight in weights.items() if weight > 0]
        self.weights = [weights[kind] for kind in self.kinds]
        if not self.kinds:
            raise ConfigError("the event mix gives every event kind a weight of 0")

    def next_kind(self, rng: random.Random) -> EventKind:
        return rng.choices(self.kinds, self.weights)[0]

    @classmethod
    def parse(cls, text: str | None) -> Mix:
        """``"purchase=5,refund=1"``: the named kinds get these weights, the others keep theirs."""
        weights = dict(DEFAULT_WEIGHTS)
        for item in filter(None, (part.strip() for part in (text or "").split(","))):
            name, _, value = item.partition("=")
            try:
                kind, weight = EventKind(name.strip()), float(value)
            except ValueError:
                known = ", ".join(kind.value for kind in EventKind)
                raise ConfigError(
                    f"--mix item {item!r} is not KIND=WEIGHT with KIND one of {known}"
                ) from None
            if weight < 0:
                raise ConfigError(f"--mix weight of {name} is negative")
            weights[kind] = weight
        return cls(weights)
