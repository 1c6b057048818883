"""The domain's closed vocabularies and field lengths, shared by the model (CHECK constraints,
column sizes) and by everything that validates input against it (the loader), so a new
transaction type or a longer code is one edit."""

from __future__ import annotations

CODE_LENGTH = 32  # source identifiers: G001, P004, CUST-1001, T0001
NAME_LENGTH = 200
EMAIL_LENGTH = 320  # RFC 5321: 64 for the local part, @, 255 for the domain
TRANSACTION_TYPES = ("sale", "refund", "payout")
WALLET_TRANSACTION_TYPES = ("deposit", "withdrawal")
KYC_STATUSES = ("unknown", "pending", "approved", "rejected")
