"""The players export: affiliates.csv, players.csv and the wallet's transactions.csv.

Same shape as the storefront facts: each file streams through normalization into a staging
table, then set-based SQL resolves references (a player's affiliate code, a wallet movement's
player) and upserts only the rows that are new or changed. Rows that would break a rule of the
model (an affiliate code redeemed by a second player, KYC approval without its time, a movement
of an unknown player) are quarantined, never forced in.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from zetl.schema.vocabulary import CODE_LENGTH, KYC_STATUSES, NAME_LENGTH, WALLET_TRANSACTION_TYPES
from zetl_loader.extract import BadRecord, ExportFile, FileSpec
from zetl_loader.normalize import (
    Reject,
    amount,
    clean_text,
    code,
    country,
    currency,
    one_of,
    optional_text,
    optional_timestamp,
    required_text,
    required_timestamp,
)
from zetl_loader.report import EntityCounts
from zetl_loader.sink import Cursor, Findings, copy_rows

AFFILIATE_FILE = FileSpec(
    "affiliate", "affiliates.csv", ("affiliate_code", "origin", "redeemed_ts"), required=False
)
PLAYER_FILE = FileSpec(
    "customer",
    "players.csv",
    (
        "player_id", "name", "email", "country", "signup_ts", "kyc_status", "kyc_approved_ts",
        "affiliate_code",
    ),
    required=False,
)  # fmt: skip
WALLET_FILE = FileSpec(
    "wallet_transaction",
    "transactions.csv",
    ("transaction_id", "player_id", "txn_type", "txn_ts", "currency", "amount"),
    required=False,
)
PLAYER_FILES = (AFFILIATE_FILE, PLAYER_FILE, WALLET_FILE)

STAGES = {
    "affiliate": (
        "stg_affiliate",
        ("line_number", "raw", "affiliate_code", "origin", "redeemed_at"),
        "line_number bigint, raw text, affiliate_code text, origin text, redeemed_at timestamptz",
    ),
    "customer": (
        "stg_player",
        (
            "line_number", "raw", "customer_code", "display_name", "email", "country_code",
            "signed_up_at", "kyc_status", "kyc_approved_at", "affiliate_code",
        ),
        "line_number bigint, raw text, customer_code text, display_name text, email text,"
        " country_code text, signed_up_at timestamptz, kyc_status text,"
        " kyc_approved_at timestamptz, affiliate_code text",
    ),
    "wallet_transaction": (
        "stg_wallet",
        (
            "line_number", "raw", "wallet_transaction_code", "customer_code", "transaction_type",
            "occurred_at", "currency", "amount",
        ),
        "line_number bigint, raw text, wallet_transaction_code text, customer_code text,"
        " transaction_type text, occurred_at timestamptz, currency text, amount numeric(12,2)",
    ),
}  # fmt: skip


def _rows(
    export: ExportFile,
    findings: Findings,
    counts: EntityCounts,
    normalize: Any,
    id_column: str,
) -> Iterator[tuple[Any, ...]]:
    """Normalize a file's records one by one; rejected ones go to quarantine on the way."""
    entity, file = export.spec.entity, export.spec.file_name
    columns = export.column_index
    for record in export:
        counts.read += 1
        if isinstance(record, BadRecord):
            findings.quarantine_record(entity, file, record, counts)
            continue
        fields = {name: record.fields[index] for name, index in columns.items()}
        try:
            values = normalize(fields, findings, file, record.line)
        except Reject as reject:
            source_id = clean_text(fields[id_column])[:CODE_LENGTH] or None
            findings.quarantine(
                entity, file, record.line, record.raw, reject.code, reject.reason, source_id
            )
            counts.quarantined += 1
            continue
        yield (record.line, record.raw, *values)


def _affiliate(fields: dict[str, str], findings: Findings, file: str, line: int) -> tuple[Any, ...]:
    affiliate_code = code(fields["affiliate_code"], "affiliate_code")
    origin = required_text(fields["origin"], "origin", CODE_LENGTH).lower()
    redeemed_at, issue = optional_timestamp(fields["redeemed_ts"], "redeemed_ts")
    if issue:
        findings.issue("affiliate", file, line, issue.code, affiliate_code, issue.detail)
    return affiliate_code, origin, redeemed_at


def _player(fields: dict[str, str], findings: Findings, file: str, line: int) -> tuple[Any, ...]:
    customer_code = code(fields["player_id"], "player_id")
    kyc_status = one_of(fields["kyc_status"] or "unknown", KYC_STATUSES, "kyc_status")
    approved_at = (
        required_timestamp(fields["kyc_approved_ts"], "kyc_approved_ts")
        if kyc_status == "approved"
        else None
    )
    if kyc_status != "approved" and fields["kyc_approved_ts"].strip():
        raise Reject("invalid_kyc", f"kyc_approved_ts is set but kyc_status is {kyc_status}")
    signed_up_at, issue = optional_timestamp(fields["signup_ts"], "signup_ts")
    if issue:
        findings.issue("customer", file, line, issue.code, customer_code, issue.detail)
    country_code, issue = country(fields["country"])
    if issue:
        findings.issue("customer", file, line, issue.code, customer_code, issue.detail)
    affiliate = clean_text(fields["affiliate_code"]).upper() or None
    return (
        customer_code,
        optional_text(fields["name"], "name", NAME_LENGTH),
        optional_text(fields["email"], "email", 320),
        country_code,
        signed_up_at,
        kyc_status,
        approved_at,
        affiliate,
    )


def _wallet(fields: dict[str, str], findings: Findings, file: str, line: int) -> tuple[Any, ...]:
    del findings, file, line
    kind = one_of(fields["txn_type"], WALLET_TRANSACTION_TYPES, "txn_type")
    value = amount(fields["amount"], "amount")
    if (kind == "deposit" and value <= 0) or (kind == "withdrawal" and value >= 0):
        raise Reject("amount_sign", f"amount {value} has the wrong sign for a {kind}")
    return (
        code(fields["transaction_id"], "transaction_id"),
        code(fields["player_id"], "player_id"),
        kind,
        required_timestamp(fields["txn_ts"], "txn_ts"),
        currency(fields["currency"]),
        value,
    )


NORMALIZERS = {
    "affiliate": (_affiliate, "affiliate_code"),
    "customer": (_player, "player_id"),
    "wallet_transaction": (_wallet, "transaction_id"),
}


class PlayerMerge:
    """Stage and merge whichever player files the export has, in dependency order."""

    def __init__(self, cur: Cursor, findings: Findings) -> None:
        self.cur = cur
        self.findings = findings
        self.run = findings.load_run_id

    def load(
        self, exports: dict[str, ExportFile], specs: tuple[FileSpec, ...]
    ) -> dict[str, EntityCounts]:
        results: dict[str, EntityCounts] = {}
        for spec in specs:
            export = exports.get(spec.entity)
            if export is None:
                continue
            counts = EntityCounts(spec.file_name)
            table, columns, definition = STAGES[spec.entity]
            self.cur.execute(f"CREATE TEMP TABLE {table} ({definition}) ON COMMIT DROP")
            normalize, id_column = NORMALIZERS[spec.entity]
            copy_rows(
                self.cur, table, columns, _rows(export, self.findings, counts, normalize, id_column)
            )
            self.cur.execute(f"ANALYZE {table}")
            self._repeated_keys(table, columns[2], spec, counts)
            getattr(self, f"_merge_{spec.entity}")(table, spec, counts)
            self.cur.execute(f"SELECT count(*) FROM {table}")
            row = self.cur.fetchone()
            counts.loaded = int(row[0]) if row else 0
            results[spec.entity] = counts
        return results

    def _quarantine(
        self,
        table: str,
        spec: FileSpec,
        counts: EntityCounts,
        condition: str,
        code: str,
        reason: str,
        source: str,
    ) -> None:
        """Move the staged rows matching ``condition`` to quarantine, in one statement."""
        self.cur.execute(
            f"WITH bad AS (DELETE FROM {table} s WHERE {condition}"
            f" RETURNING s.line_number, s.raw, {source} AS source_id, {reason} AS reason),"
            " q AS (INSERT INTO zetl_load.quarantine (load_run_id, file_name, line_number,"
            " raw_content, reason_code, reason)"
            " SELECT %(run)s, %(file)s, line_number, raw, %(code)s, reason FROM bad)"
            " INSERT INTO zetl_load.data_issue (load_run_id, code, entity, source_id,"
            " file_name, line_number, detail)"
            " SELECT %(run)s, %(code)s, %(entity)s, source_id, %(file)s, line_number, reason"
            " FROM bad",
            {"run": self.run, "file": spec.file_name, "code": code, "entity": spec.entity},
        )
        counts.quarantined += self.cur.rowcount

    def _repeated_keys(self, table: str, key: str, spec: FileSpec, counts: EntityCounts) -> None:
        """A natural key seen again in the same file: the first row wins, the others are
        quarantined (the file contradicts itself; nothing is silently picked)."""
        self._quarantine(
            table, spec, counts,
            f"EXISTS (SELECT 1 FROM {table} f WHERE f.{key} = s.{key}"
            " AND f.line_number < s.line_number)",
            "duplicate_conflict",
            f"'{key} ' || s.{key} || ' appears on an earlier line'",
            f"s.{key}",
        )  # fmt: skip

    def _upsert(self, counts: EntityCounts, statement: str) -> None:
        self.cur.execute(
            f"WITH upserted AS ({statement} RETURNING xmax = 0 AS inserted)"
            " SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)"
            " FROM upserted"
        )
        row = self.cur.fetchone()
        assert row is not None
        counts.inserted += row[0]
        counts.updated += row[1]

    def _merge_affiliate(self, table: str, spec: FileSpec, counts: EntityCounts) -> None:
        del spec
        self._upsert(
            counts,
            "INSERT INTO affiliate AS a (affiliate_code, origin, redeemed_at)"
            f" SELECT affiliate_code, origin, redeemed_at FROM {table}"
            " ON CONFLICT (affiliate_code) DO UPDATE SET origin = EXCLUDED.origin,"
            " redeemed_at = EXCLUDED.redeemed_at"
            " WHERE (a.origin, a.redeemed_at) IS DISTINCT FROM"
            " (EXCLUDED.origin, EXCLUDED.redeemed_at)",
        )

    def _merge_customer(self, table: str, spec: FileSpec, counts: EntityCounts) -> None:
        self._quarantine(
            table, spec, counts,
            "s.affiliate_code IS NOT NULL AND NOT EXISTS"
            " (SELECT 1 FROM affiliate a WHERE a.affiliate_code = s.affiliate_code)",
            "unknown_reference",
            "'affiliate_code ' || s.affiliate_code || ' is no affiliate'",
            "s.customer_code",
        )  # fmt: skip
        self._quarantine(
            table, spec, counts,
            "s.affiliate_code IS NOT NULL AND (EXISTS (SELECT 1 FROM " + table + " f"
            " WHERE f.affiliate_code = s.affiliate_code AND f.line_number < s.line_number)"
            " OR EXISTS (SELECT 1 FROM customer c JOIN affiliate a"
            " ON a.id = c.referred_by_affiliate_id WHERE a.affiliate_code = s.affiliate_code"
            " AND c.customer_code <> s.customer_code))",
            "affiliate_already_redeemed",
            "'affiliate_code ' || s.affiliate_code || ' is redeemed by another player'",
            "s.customer_code",
        )  # fmt: skip
        columns = (
            "display_name", "email", "country_code", "signed_up_at", "kyc_status",
            "kyc_approved_at", "referred_by_affiliate_id",
        )  # fmt: skip
        self._upsert(
            counts,
            f"INSERT INTO customer AS c (customer_code, {', '.join(columns)})"
            " SELECT s.customer_code, s.display_name, s.email, s.country_code, s.signed_up_at,"
            f" s.kyc_status, s.kyc_approved_at, a.id FROM {table} s"
            " LEFT JOIN affiliate a ON a.affiliate_code = s.affiliate_code"
            " ON CONFLICT (customer_code) DO UPDATE SET "
            + ", ".join(f"{c} = EXCLUDED.{c}" for c in columns)
            + f" WHERE ({', '.join(f'c.{c}' for c in columns)}) IS DISTINCT FROM"
            f" ({', '.join(f'EXCLUDED.{c}' for c in columns)})",
        )

    def _merge_wallet_transaction(self, table: str, spec: FileSpec, counts: EntityCounts) -> None:
        self._quarantine(
            table, spec, counts,
            "NOT EXISTS (SELECT 1 FROM customer c WHERE c.customer_code = s.customer_code)",
            "unknown_reference",
            "'player_id ' || s.customer_code || ' is no player'",
            "s.wallet_transaction_code",
        )  # fmt: skip
        columns = ("customer_id", "transaction_type", "occurred_at", "currency", "amount")
        self._upsert(
            counts,
            f"INSERT INTO wallet_transaction AS w (wallet_transaction_code, {', '.join(columns)})"
            " SELECT s.wallet_transaction_code, c.id, s.transaction_type, s.occurred_at,"
            f" s.currency, s.amount FROM {table} s"
            " JOIN customer c ON c.customer_code = s.customer_code"
            " ON CONFLICT (wallet_transaction_code) DO UPDATE SET "
            + ", ".join(f"{c} = EXCLUDED.{c}" for c in columns)
            + f" WHERE ({', '.join(f'w.{c}' for c in columns)}) IS DISTINCT FROM"
            f" ({', '.join(f'EXCLUDED.{c}' for c in columns)})",
        )
