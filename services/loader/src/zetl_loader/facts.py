"""Transactions and their lines: streamed into staging tables, then merged set-based.

Each file streams through normalization straight into a temporary staging table with COPY
(memory stays flat however large the file). Everything that needs more than one row — repeated
keys, lines whose transaction is unknown, signs that disagree with the header's type, refund
links, header totals — is then decided in SQL: rows whose values changed are updated in place
(``UPDATE ... WHERE ... IS DISTINCT FROM``), rows whose key is new are inserted, unchanged rows
are not touched. A second load of the same files changes nothing, a corrected file updates
exactly the rows it corrects.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any

from zetl.schema import LOAD_SCHEMA
from zetl.schema.vocabulary import CODE_LENGTH, TRANSACTION_TYPES
from zetl_loader.dimensions import Resolver
from zetl_loader.extract import BadRecord, ExportFile
from zetl_loader.normalize import (
    PLATFORM_CUSTOMER,
    Reject,
    amount,
    check_sign,
    clean_text,
    code,
    currency,
    one_of,
    required_text,
    required_timestamp,
    small_positive_int,
)
from zetl_loader.report import EntityCounts
from zetl_loader.sink import Cursor, Findings, copy_rows

TRANSACTION_STAGE = "stg_transaction"
ANALYZE_AFTER_ROWS = 10_000
# Distinct values per column whose normalization is remembered (see line_rows).
CACHE_SIZE = 4096
LINE_STAGE = "stg_line"
TRANSACTION_STAGE_COLUMNS = (
    "line_number", "raw", "transaction_code", "transaction_type", "occurred_at", "currency",
    "total_amount", "customer_code",
)  # fmt: skip
LINE_STAGE_COLUMNS = (
    "line_number", "raw", "transaction_code", "line_no", "game_id", "publisher_id", "region",
    "platform", "gross_amount", "fee_amount", "net_amount",
)  # fmt: skip

CREATE_STAGES = f"""
CREATE TEMP TABLE {TRANSACTION_STAGE} (
    line_number bigint, raw text, transaction_code text, transaction_type text,
    occurred_at timestamptz, currency text, total_amount numeric(12,2), customer_code text
) ON COMMIT DROP;
CREATE TEMP TABLE {LINE_STAGE} (
    line_number bigint, raw text, transaction_code text, line_no smallint, game_id bigint,
    publisher_id bigint, region text, platform text, gross_amount numeric(12,2),
    fee_amount numeric(12,2), net_amount numeric(12,2)
) ON COMMIT DROP;
"""


def _source_id(fields: list[str], index: int) -> str | None:
    return clean_text(fields[index])[:CODE_LENGTH] or None


def _customer(value: str, kind: str) -> str | None:
    text = clean_text(value).upper()
    if kind == "payout":
        return None  # paid to publishers (on the lines); customer_ref says PLATFORM
    if not text or text == PLATFORM_CUSTOMER:
        raise Reject("missing_value", f"a {kind} needs a customer_ref, found {text!r}")
    if len(text) > CODE_LENGTH:
        raise Reject("field_too_long", f"customer_ref has {len(text)} characters")
    return text


def transaction_rows(
    export: ExportFile, findings: Findings, counts: EntityCounts
) -> Iterator[tuple[Any, ...]]:
    """Staging rows of transaction.csv; rejected rows go to quarantine on the way."""
    file, columns = export.spec.file_name, export.column_index
    i_id, i_type, i_ts = columns["transaction_id"], columns["txn_type"], columns["txn_ts"]
    i_cur, i_total, i_cust = columns["currency"], columns["total_amount"], columns["customer_ref"]
    # Few distinct types, currencies and totals: each normalized once (see line_rows).
    kind_of = lru_cache(maxsize=CACHE_SIZE)(one_of)
    money = lru_cache(maxsize=CACHE_SIZE)(amount)
    currency_of = lru_cache(maxsize=CACHE_SIZE)(currency)
    for record in export:
        counts.read += 1
        if isinstance(record, BadRecord):
            findings.quarantine_record("store_transaction", file, record, counts)
            continue
        fields = record.fields
        try:
            kind = kind_of(fields[i_type], TRANSACTION_TYPES, "txn_type")
            total = money(fields[i_total], "total_amount")
            check_sign(kind, total, "total_amount")
            yield (
                record.line,
                record.raw,
                code(fields[i_id], "transaction_id"),
                kind,
                required_timestamp(fields[i_ts], "txn_ts"),
                currency_of(fields[i_cur]),
                total,
                _customer(fields[i_cust], kind),
            )
        except Reject as reject:
            findings.quarantine(
                "store_transaction",
                file,
                record.line,
                record.raw,
                reject.code,
                reject.reason,
                _source_id(fields, i_id),
            )
            counts.quarantined += 1


def line_rows(
    export: ExportFile,
    games: Resolver,
    publishers: Resolver,
    findings: Findings,
    counts: EntityCounts,
) -> Iterator[tuple[Any, ...]]:
    """Staging rows of transaction_detail.csv, game and publisher resolved to canonical ids."""
    file, columns = export.spec.file_name, export.column_index
    i_id, i_no = columns["transaction_id"], columns["line_no"]
    i_game, i_pub = columns["game_ref"], columns["publisher_ref"]
    i_region, i_platform = columns["region"], columns["platform"]
    i_gross, i_fee, i_net = columns["gross_amount"], columns["platform_fee"], columns["net_amount"]
    # Lines repeat a few values (references, prices, regions, platforms): each distinct text
    # is normalized once. Bounded caches keep memory flat; rejects are never cached.
    game_id_of = lru_cache(maxsize=CACHE_SIZE)(games.resolve)
    publisher_id_of = lru_cache(maxsize=CACHE_SIZE)(publishers.resolve)
    money = lru_cache(maxsize=CACHE_SIZE)(amount)
    line_number_of = lru_cache(maxsize=CACHE_SIZE)(small_positive_int)
    required = lru_cache(maxsize=CACHE_SIZE)(required_text)
    for record in export:
        counts.read += 1
        if isinstance(record, BadRecord):
            findings.quarantine_record("store_transaction_line", file, record, counts)
            continue
        fields = record.fields
        try:
            gross = money(fields[i_gross], "gross_amount")
            fee = money(fields[i_fee], "platform_fee")
            net = money(fields[i_net], "net_amount")
            if net != gross - fee:
                raise Reject("net_mismatch", f"net_amount {net} is not {gross} - {fee}")
            game_id = game_id_of(fields[i_game])
            if game_id is None:
                raise Reject("unknown_reference", f"game_ref {fields[i_game].strip()!r} is no game")
            publisher_id = publisher_id_of(fields[i_pub])
            if publisher_id is None:
                raise Reject(
                    "unknown_reference", f"publisher_ref {fields[i_pub].strip()!r} is no publisher"
                )
            yield (
                record.line,
                record.raw,
                code(fields[i_id], "transaction_id"),
                line_number_of(fields[i_no], "line_no"),
                game_id,
                publisher_id,
                required(fields[i_region], "region", 16).upper(),
                required(fields[i_platform], "platform", CODE_LENGTH),
                gross,
                fee,
                net,
            )
        except Reject as reject:
            findings.quarantine(
                "store_transaction_line",
                file,
                record.line,
                record.raw,
                reject.code,
                reject.reason,
                _source_id(fields, i_id),
            )
            counts.quarantined += 1


def stage(
    cur: Cursor, table: str, columns: tuple[str, ...], rows: Iterator[tuple[Any, ...]]
) -> None:
    copy_rows(cur, table, columns, rows)
    cur.execute(f"ANALYZE {table}")


# --- set-based merge -------------------------------------------------------------------------


class FactMerge:
    """The SQL steps after staging, in order, with the counts and findings they produce."""

    def __init__(
        self,
        cur: Cursor,
        findings: Findings,
        transactions: EntityCounts,
        lines: EntityCounts,
    ) -> None:
        self.cur = cur
        self.findings = findings
        self.transactions = transactions
        self.lines = lines
        self.run = findings.load_run_id
        self.loaded_transactions = 0
        self.loaded_lines = 0
        self.timings: dict[str, float] = {}

    def run_transaction_steps(self) -> None:
        """The steps that need only the staged transactions (the lines may still be staging)."""
        self._run(
            self.resolve_transaction_duplicates,
            self.upsert_customers,
            self.upsert_transactions,
        )

    def run_line_steps(self) -> None:
        self._run(
            self.resolve_line_duplicates,
            self.quarantine_orphan_lines,
            self.quarantine_lines_with_wrong_signs,
            self.upsert_lines,
            self.link_refunds,
            self.report_total_mismatches,
        )

    def _run(self, *steps: Callable[[], None]) -> None:
        for step in steps:
            started = time.perf_counter()
            step()
            self.timings[step.__name__] = round(time.perf_counter() - started, 3)

    def resolve_transaction_duplicates(self) -> None:
        self.resolve_duplicates(
            TRANSACTION_STAGE,
            ("transaction_code",),
            TRANSACTION_STAGE_COLUMNS[3:],
            "store_transaction",
            self.transactions,
        )
        self.loaded_transactions = self._staged(TRANSACTION_STAGE)

    def resolve_line_duplicates(self) -> None:
        self.resolve_duplicates(
            LINE_STAGE,
            ("transaction_code", "line_no"),
            LINE_STAGE_COLUMNS[4:],
            "store_transaction_line",
            self.lines,
        )

    def quarantine_orphan_lines(self) -> None:
        self.quarantine_lines(
            "NOT EXISTS (SELECT 1 FROM store_transaction t"
            " WHERE t.transaction_code = s.transaction_code)",
            "unknown_reference",
            "'transaction_id ' || s.transaction_code || ' is in no transaction'",
        )

    def quarantine_lines_with_wrong_signs(self) -> None:
        self.quarantine_lines(
            "EXISTS (SELECT 1 FROM store_transaction t WHERE t.transaction_code ="
            " s.transaction_code AND NOT ("
            "(t.transaction_type = 'sale' AND s.gross_amount >= 0 AND s.fee_amount >= 0)"
            " OR (t.transaction_type = 'refund' AND s.gross_amount <= 0 AND s.fee_amount <= 0)"
            " OR (t.transaction_type = 'payout' AND s.gross_amount <= 0 AND s.fee_amount = 0)))",
            "amount_sign",
            "'amounts ' || s.gross_amount || ' / ' || s.fee_amount"
            " || ' have the wrong sign for the transaction''s type'",
        )
        self.loaded_lines = self._staged(LINE_STAGE)

    def _staged(self, table: str) -> int:
        """Rows left in a stage after its rejects: exactly the rows the upsert receives."""
        self.cur.execute(f"SELECT count(*) FROM {table}")
        row = self.cur.fetchone()
        return int(row[0]) if row else 0

    def resolve_duplicates(
        self,
        table: str,
        keys: tuple[str, ...],
        values: tuple[str, ...],
        entity: str,
        counts: EntityCounts,
    ) -> None:
        """A key seen again: merged when it repeats the first row, quarantined when it differs."""
        key_list = ", ".join(keys)
        same = f"({', '.join(f's.{v}' for v in values)}) IS NOT DISTINCT FROM"
        same += f" ({', '.join(f'f.{v}' for v in values)})"
        self.cur.execute(
            f"SELECT s.line_number, s.raw, s.{keys[0]}, f.line_number, {same}"
            f" FROM {table} s JOIN (SELECT DISTINCT ON ({key_list}) * FROM {table}"
            f" WHERE ({key_list}) IN (SELECT {key_list} FROM {table} GROUP BY {key_list}"
            f" HAVING count(*) > 1) ORDER BY {key_list}, line_number) f USING ({key_list})"
            " WHERE s.line_number <> f.line_number"
        )
        repeats = self.cur.fetchall()
        file = counts.file
        for line, raw, source_id, first_line, identical in repeats:
            if identical:
                self.findings.issue(
                    entity, file, line, "duplicate_merged", source_id, f"repeats line {first_line}"
                )
                counts.merged += 1
            else:
                self.findings.quarantine(
                    entity,
                    file,
                    line,
                    raw,
                    "duplicate_conflict",
                    f"the same key is on line {first_line} with other values",
                    source_id,
                )
                counts.quarantined += 1
        if repeats:
            self.cur.execute(
                f"DELETE FROM {table} WHERE line_number = ANY(%s)", ([r[0] for r in repeats],)
            )

    def upsert_customers(self) -> None:
        self.cur.execute(
            "INSERT INTO customer (customer_code)"
            f" SELECT DISTINCT customer_code FROM {TRANSACTION_STAGE} s"
            " WHERE customer_code IS NOT NULL"
            # Known customers never reach the insert (one anti-join, not a probe each); ON
            # CONFLICT stays for a player another writer adds meanwhile.
            " AND NOT EXISTS (SELECT 1 FROM customer c WHERE c.customer_code = s.customer_code)"
            " ON CONFLICT (customer_code) DO NOTHING"
        )

    def _changed(self, table: str, updated: int, inserted: int, counts: EntityCounts) -> None:
        counts.updated += updated
        counts.inserted += inserted
        if updated + inserted >= ANALYZE_AFTER_ROWS:
            # The next steps join this table: plan them on its new size, not its old one.
            self.cur.execute(f"ANALYZE {table}")

    def upsert_transactions(self) -> None:
        # Lines repeat their header's type and currency, and their sign checks depend on it: a
        # corrected header that changes either replaces its lines (restaged from this load)
        # instead of cascading into lines that would briefly break their checks.
        self.cur.execute(
            "DELETE FROM store_transaction_line l USING store_transaction t,"
            f" {TRANSACTION_STAGE} s WHERE l.transaction_id = t.id"
            " AND t.transaction_code = s.transaction_code"
            " AND (t.transaction_type, t.currency) IS DISTINCT FROM"
            " (s.transaction_type, s.currency)"
        )
        staged = (
            "SELECT s.transaction_code, s.transaction_type, s.occurred_at, s.currency,"
            f" s.total_amount, c.id AS customer_id FROM {TRANSACTION_STAGE} s"
            " LEFT JOIN customer c ON c.customer_code = s.customer_code"
        )
        # Corrected rows are updated in place; unchanged rows are not touched at all (no row
        # lock, no write, no WAL, no updated_at bump).
        self.cur.execute(
            "UPDATE store_transaction t SET transaction_type = s.transaction_type,"
            " occurred_at = s.occurred_at, currency = s.currency, total_amount = s.total_amount,"
            " customer_id = s.customer_id,"
            " refunded_transaction_id = CASE WHEN s.transaction_type = 'refund'"
            " THEN t.refunded_transaction_id END"
            f" FROM ({staged}) s WHERE t.transaction_code = s.transaction_code"
            " AND (t.transaction_type, t.occurred_at, t.currency, t.total_amount, t.customer_id)"
            " IS DISTINCT FROM"
            " (s.transaction_type, s.occurred_at, s.currency, s.total_amount, s.customer_id)"
        )
        updated = self.cur.rowcount
        # New keys: a plain INSERT, not ON CONFLICT, whose speculative insertion costs ~20% more
        # per row. Loads never interleave (advisory lock); should another writer commit one of
        # these codes meanwhile, the unique key stops the load and it rolls back, nothing lost.
        self.cur.execute(
            "INSERT INTO store_transaction (transaction_code, transaction_type, occurred_at,"
            f" currency, total_amount, customer_id) SELECT * FROM ({staged}) s"
            " WHERE NOT EXISTS (SELECT 1 FROM store_transaction x"
            " WHERE x.transaction_code = s.transaction_code)"
        )
        self._changed("store_transaction", updated, self.cur.rowcount, self.transactions)

    def quarantine_lines(self, condition: str, reason_code: str, reason: str) -> None:
        """Move the staged lines matching ``condition`` to quarantine, in one statement."""
        file = self.lines.file
        self.cur.execute(
            f"WITH bad AS (DELETE FROM {LINE_STAGE} s WHERE {condition}"
            f" RETURNING s.line_number, s.raw, s.transaction_code, {reason} AS reason),"
            f" quarantined AS (INSERT INTO {LOAD_SCHEMA}.quarantine (load_run_id, file_name,"
            " line_number, raw_content, reason_code, reason)"
            " SELECT %(run)s, %(file)s, line_number, raw, %(code)s, reason FROM bad)"
            f" INSERT INTO {LOAD_SCHEMA}.data_issue (load_run_id, code, entity, source_id,"
            " file_name, line_number, detail)"
            " SELECT %(run)s, %(code)s, 'store_transaction_line', transaction_code, %(file)s,"
            " line_number, reason FROM bad",
            {"run": self.run, "file": file, "code": reason_code},
        )
        self.lines.quarantined += self.cur.rowcount

    def upsert_lines(self) -> None:
        self.cur.execute(
            "INSERT INTO game_listing (game_id, platform, publisher_id)"
            f" SELECT DISTINCT game_id, platform, publisher_id FROM {LINE_STAGE}"
            " ON CONFLICT (game_id, platform, publisher_id) DO NOTHING"
        )
        values = (
            "game_id", "platform", "publisher_id", "region", "gross_amount", "fee_amount",
            "net_amount",
        )  # fmt: skip
        staged = f"{LINE_STAGE} s JOIN store_transaction t USING (transaction_code)"
        # As for the transactions: corrected lines in place, unchanged ones untouched, new
        # ones with a plain INSERT.
        self.cur.execute(
            "UPDATE store_transaction_line l SET "
            + ", ".join(f"{v} = s.{v}" for v in values)
            + f" FROM {staged} WHERE l.transaction_id = t.id AND l.line_number = s.line_no"
            f" AND ({', '.join(f'l.{v}' for v in values)}) IS DISTINCT FROM"
            f" ({', '.join(f's.{v}' for v in values)})"
        )
        updated = self.cur.rowcount
        self.cur.execute(
            "INSERT INTO store_transaction_line (transaction_id, line_number, transaction_type,"
            f" currency, {', '.join(values)}) SELECT t.id, s.line_no, t.transaction_type,"
            f" t.currency, {', '.join(f's.{v}' for v in values)} FROM {staged}"
            " WHERE NOT EXISTS (SELECT 1 FROM store_transaction_line x"
            " WHERE x.transaction_id = t.id AND x.line_number = s.line_no)"
        )
        self._changed("store_transaction_line", updated, self.cur.rowcount, self.lines)

    def link_refunds(self) -> None:
        """Each refund of this load points at the purchase it refunds: the same customer's
        latest earlier sale in the same currency, preferring one of the refunded amount and
        one that sold a game the refund returns."""
        self.cur.execute(
            "WITH matched AS ("
            " SELECT r.id, r.transaction_code, s.line_number, ("
            "  SELECT p.id FROM store_transaction p"
            "  WHERE p.customer_id = r.customer_id AND p.transaction_type = 'sale'"
            "  AND p.currency = r.currency AND p.occurred_at <= r.occurred_at"
            "  ORDER BY p.total_amount = -r.total_amount DESC,"
            "  EXISTS (SELECT 1 FROM store_transaction_line pl JOIN store_transaction_line rl"
            "   ON rl.game_id = pl.game_id WHERE pl.transaction_id = p.id"
            "   AND rl.transaction_id = r.id) DESC,"
            "  p.occurred_at DESC, p.id DESC LIMIT 1) AS purchase_id"
            f" FROM {TRANSACTION_STAGE} s JOIN store_transaction r USING (transaction_code)"
            " WHERE r.transaction_type = 'refund'),"
            " linked AS (UPDATE store_transaction t SET refunded_transaction_id = m.purchase_id"
            " FROM matched m WHERE t.id = m.id"
            " AND t.refunded_transaction_id IS DISTINCT FROM m.purchase_id)"
            " SELECT transaction_code, line_number FROM matched WHERE purchase_id IS NULL"
        )
        for transaction_code, line in self.cur.fetchall():
            self.findings.issue(
                "store_transaction",
                self.transactions.file,
                line,
                "refund_unmatched",
                transaction_code,
                "no earlier sale to the same customer in the same currency",
            )

    def report_total_mismatches(self) -> None:
        """A header total that disagrees with its lines is real data: kept, and flagged."""
        self.cur.execute(
            "SELECT s.transaction_code, s.line_number, s.total_amount,"
            " coalesce(l.lines_total, 0) AS lines_total"
            f" FROM {TRANSACTION_STAGE} s JOIN store_transaction t USING (transaction_code)"
            # Summed per transaction id before the join: a hash on one bigint instead of on
            # the staged rows' text columns (which spilled to disk at a million lines).
            " LEFT JOIN (SELECT transaction_id, sum(gross_amount) AS lines_total"
            " FROM store_transaction_line GROUP BY transaction_id) l ON l.transaction_id = t.id"
            " WHERE s.total_amount <> coalesce(l.lines_total, 0)"
        )
        for transaction_code, line, total, lines_total in self.cur.fetchall():
            self.findings.issue(
                "store_transaction",
                self.transactions.file,
                line,
                "total_mismatch",
                transaction_code,
                f"total_amount {total} but the lines sum to {lines_total}",
            )
