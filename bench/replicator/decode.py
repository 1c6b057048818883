"""The pgoutput decoder alone: microseconds per message on synthetic row changes, no server.

The replicator's CPU goes largely to decoding (see ``make bench-replicator`` for the whole), so
this isolates it: a million-row insert as streamed (the bulk case), pgbench-like inserts and
updates (the OLTP case), deletes by key, and rows with UTF-8 text and NULLs. Each decoder given
is checked against the first one on every message before it is timed (CPU time, best of five).

    python bench/replicator/decode.py [OTHER_DECODER.py ...]

With no argument it measures the installed ``zetl_replicator.source.pgoutput``; give the path of
another version's ``pgoutput.py`` (e.g. from a ``git worktree`` of main), or of a built
``pgoutput_compiled`` extension, to compare them in one run.
"""

from __future__ import annotations

import importlib.util
import random
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import zetl_replicator.source.pgoutput

MESSAGES = 50_000


def load(path: str) -> ModuleType:
    # An extension module must keep its own name (its init function is named after it)
    name = f"pgoutput_{abs(hash(path))}" if path.endswith(".py") else Path(path).name.split(".")[0]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load a decoder from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def tuple_data(values: list[str | None]) -> bytes:
    out = [struct.pack(">h", len(values))]
    for value in values:
        if value is None:
            out.append(b"n")
        else:
            encoded = value.encode()
            out.append(b"t" + struct.pack(">i", len(encoded)) + encoded)
    return b"".join(out)


def line_item(g: int) -> list[str | None]:
    """A row of the bulk benchmark's line_items, as its INSERT ... SELECT makes it."""
    stamp = "2026-11-27 19:30:01.123456+00"
    price = f"{g % 10000 / 100:.2f}"
    return [str(g), str(g // 4), str(g % 5000), str(1 + g % 7), price, "0", "EUR", stamp, stamp]


def workloads() -> dict[str, tuple[list[bytes], bool]]:
    rng = random.Random(1)
    oltp: list[bytes] = []
    row_id = 1000
    while len(oltp) < MESSAGES:  # the pgbench script's shape: three inserts and an update
        order = str(rng.randint(1, 100_000_000))
        micros = f"{rng.randint(0, 999_999):06d}".rstrip("0")
        stamp = f"2026-11-27 19:30:{rng.randint(10, 59)}.{micros}+00"
        for product, quantity, price, discount in (
            ("1", "1", "9.99", "0.00"),
            ("2", "2", "19.99", "0.00"),
            ("3", "1", "4.50", "0.50"),
        ):
            row_id += 1
            values = [str(row_id), order, product, quantity, price, discount, "EUR", stamp, stamp]
            oltp.append(b"I" + struct.pack(">I", 16390) + b"N" + tuple_data(list(values)))
        values = [str(row_id), order, "3", "2", "4.50", "0.50", "EUR", stamp, stamp]
        oltp.append(b"U" + struct.pack(">I", 16390) + b"N" + tuple_data(list(values)))
    head = b"I" + struct.pack(">II", 750, 16384) + b"N"  # in a stream block: with its xid
    key_only: list[str | None] = [None] * 8
    return {
        "bulk insert, streamed": ([head + tuple_data(line_item(g)) for g in range(MESSAGES)], True),
        "oltp insert/update": (oltp, False),
        "delete by key": (
            [
                b"D" + struct.pack(">I", 16384) + b"K" + tuple_data([str(g), *key_only])
                for g in range(MESSAGES)
            ],
            False,
        ),
        "UTF-8 text and NULLs": (
            [
                b"I"
                + struct.pack(">I", 16384)
                + b"N"
                + tuple_data([str(g), "Zoë Müller", None, "x" * 300, None])
                for g in range(MESSAGES)
            ],
            False,
        ),
    }


def fields(message: Any) -> tuple[Any, ...]:
    """A message's content, comparable across versions (their classes differ)."""
    names = ("xid", "relation_id", "old", "old_kind", "new", "size")
    return (type(message).__name__, *(getattr(message, n, None) for n in names))


def cpu_time(decode: Callable[..., Any], messages: list[bytes], in_stream: bool) -> float:
    started = time.process_time()
    for message in messages:
        decode(message, in_stream=in_stream)
    return time.process_time() - started


def main() -> None:
    decoders = [("installed", zetl_replicator.source.pgoutput)] + [
        (p, load(p)) for p in sys.argv[1:]
    ]
    for label, (messages, in_stream) in workloads().items():
        reference = [fields(decoders[0][1].decode(m, in_stream=in_stream)) for m in messages]
        best: dict[str, float] = {}
        for name, module in decoders:
            got = [fields(module.decode(m, in_stream=in_stream)) for m in messages]
            if got != reference:
                raise SystemExit(f"{name} decodes {label} differently")
        for _ in range(5):  # interleaved, so that a busy moment hits every decoder alike
            for name, module in decoders:
                seconds = cpu_time(module.decode, messages, in_stream)
                best[name] = min(best.get(name, seconds), seconds)
        first = best[decoders[0][0]]
        print(
            f"{label:24s} "
            + "  ".join(
                f"{n}: {best[n] / MESSAGES * 1e6:.2f} us ({best[n] / first:.2f}x the first's time)"
                for n, _ in decoders
            )
        )


if __name__ == "__main__":
    main()
