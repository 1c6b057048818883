"""Bad input to every command line gets one clear line and its documented exit code (0 ok,
1 data or check failure, 2 usage or configuration), never a traceback: unknown names,
malformed options and filters, unreachable hosts, wrong passwords, plaintext to a server that
requires TLS. Each case runs the installed ``zetl`` against the harness' real servers.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.harness import PostgresServer, free_port
from zetl.schema.migrate import upgrade

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ZETL = [sys.executable, "-m", "zetl"]
USAGE, DATA = 2, 1


@dataclass(frozen=True)
class Case:
    """``zetl ARGS`` with these variables (``{source}``, ``{warehouse}``: the test's databases;
    ``{wrong-password}``, ``{unreachable}``, ``{plaintext}``: a URL of either made bad)."""

    args: tuple[str, ...]
    code: int
    message: str  # a regular expression the error line must match
    env: dict[str, str] = field(default_factory=dict)


CASES = {
    # zetl load
    "load: no such directory": Case(("load", "/nonexistent"), USAGE, "no such directory"),
    "load: a missing argument": Case(("load",), USAGE, "Missing argument 'directory'"),
    "load: a wrong password": Case(
        ("load", "data/raw"),
        USAGE,
        "password authentication failed",
        {"SOURCE_DATABASE_URL": "{source:wrong-password}"},
    ),
    "load: an unreachable host": Case(
        ("load", "data/raw"),
        USAGE,
        "Connection refused",
        {"SOURCE_DATABASE_URL": "{source:unreachable}"},
    ),
    "load: an unknown host": Case(
        ("load", "data/raw"),
        USAGE,
        "could not translate host name",
        {"SOURCE_DATABASE_URL": "{source:unknown-host}"},
    ),
    "load: not a URL": Case(
        ("load", "data/raw"),
        USAGE,
        "not a libpq connection string",
        {"SOURCE_DATABASE_URL": "not a url"},
    ),
    "load: plaintext": Case(
        ("load", "data/raw"),
        USAGE,
        "no encryption",
        {"SOURCE_DATABASE_URL": "{source:plaintext}"},
    ),
    "load: a report it cannot write": Case(
        ("load", "data/raw", "--report", "/nonexistent/report.json"),
        USAGE,
        "/nonexistent/report.json: No such file or directory",
    ),
    # zetl generate
    "generate: an unknown event kind": Case(
        ("generate", "--mix", "bogus=1", "--max-events", "1"), USAGE, r"--mix item 'bogus=1'"
    ),
    "generate: a malformed mix": Case(
        ("generate", "--mix", "purchase", "--max-events", "1"), USAGE, r"is not KIND=WEIGHT"
    ),
    "generate: a rate out of range": Case(
        ("generate", "--rate", "0"), USAGE, r"Invalid value for '--rate'"
    ),
    "generate: a wrong password": Case(
        ("generate", "--max-events", "1"),
        USAGE,
        "password authentication failed",
        {"SOURCE_DATABASE_URL": "{source:wrong-password}"},
    ),
    "generate: an unreachable host": Case(
        ("generate", "--max-events", "1", "--wait", "1"),
        USAGE,
        "Connection refused",
        {"SOURCE_DATABASE_URL": "{source:unreachable}"},
    ),
    # zetl replicate (an unreachable host is waited for: test_replicate_waits_for_...)
    "replicate: a malformed data filter": Case(
        ("replicate",),
        USAGE,
        "data filter rule 'garbage here'",
        {"ZETL_DATA_FILTER": "garbage here"},
    ),
    "replicate: a data filter with an empty rule": Case(
        ("replicate",),
        USAGE,
        "data filter rule 'exclude'",
        {"ZETL_DATA_FILTER": "include: *.*.*, exclude"},
    ),
    "replicate: a missing data filter file": Case(
        ("replicate",),
        USAGE,
        "ZETL_DATA_FILTER_FILE=/nonexistent cannot be read",
        {"ZETL_DATA_FILTER_FILE": "/nonexistent"},
    ),
    "replicate: a port that is not a number": Case(
        ("replicate", "--metrics-port", "abc"), USAGE, r"Invalid value for '--metrics-port'"
    ),
    "replicate: a wrong source password": Case(
        ("replicate",),
        USAGE,
        "password authentication failed",
        {"SOURCE_DATABASE_URL": "{source:wrong-password}"},
    ),
    "replicate: a wrong warehouse password": Case(
        ("replicate",),
        USAGE,
        "password authentication failed",
        {"WAREHOUSE_DATABASE_URL": "{warehouse:wrong-password}"},
    ),
    "replicate: plaintext to the source": Case(
        ("replicate",),
        USAGE,
        "no encryption",
        {"SOURCE_DATABASE_URL": "{source:plaintext}"},
    ),
    # zetl refresh
    "refresh: an unknown table": Case(
        ("refresh", "TABLE public.nosuch"), USAGE, r"not tables of the integration: public\.nosuch"
    ),
    "refresh: a malformed clause": Case(
        ("refresh", "TABLES garbage"), USAGE, r"use: zetl refresh TABLE"
    ),
    "refresh: a wrong password": Case(
        ("refresh", "ALL TABLES"),
        USAGE,
        "password authentication failed",
        {"WAREHOUSE_DATABASE_URL": "{warehouse:wrong-password}"},
    ),
    "refresh: an unreachable host": Case(
        ("refresh", "ALL TABLES"),
        USAGE,
        "Connection refused",
        {"WAREHOUSE_DATABASE_URL": "{warehouse:unreachable}"},
    ),
    # zetl transform
    "transform: a selection that matches nothing": Case(
        ("transform", "--select", "nosuch_model"), USAGE, "--select nosuch_model matches no model"
    ),
    "transform: an unknown target": Case(
        ("transform", "--target", "bogus"), USAGE, "--target must be one of"
    ),
    "transform: a wrong password": Case(
        ("transform",),
        USAGE,
        "password authentication failed",
        {"WAREHOUSE_DATABASE_URL": "{warehouse:wrong-password}"},
    ),
    "transform: an unreachable host": Case(
        ("transform",),
        USAGE,
        "Connection refused",
        {"WAREHOUSE_DATABASE_URL": "{warehouse:unreachable}"},
    ),
    # zetl dq
    "dq: an unknown checkpoint": Case(("dq", "run", "nosuch"), USAGE, "no checkpoint 'nosuch'"),
    "dq: an unknown target": Case(
        ("dq", "run", "marts", "--target", "bogus"), USAGE, r"Invalid value for '--target'"
    ),
    "dq: a wrong password": Case(
        ("dq", "run", "replica_parity"),
        USAGE,
        "password authentication failed",
        {"WAREHOUSE_DATABASE_URL": "{warehouse:wrong-password}"},
    ),
    "dq: an unreachable host": Case(
        ("dq", "run", "source_integrity"),
        USAGE,
        "Connection refused",
        {"SOURCE_DATABASE_URL": "{source:unreachable}"},
    ),
    # zetl redshift serve
    "redshift serve: a wrong password": Case(
        ("redshift", "serve", "--port", "{port}"),
        USAGE,
        "password authentication failed",
        {"WAREHOUSE_DATABASE_URL": "{warehouse:wrong-password}"},
    ),
    "redshift serve: an unreachable host": Case(
        ("redshift", "serve", "--port", "{port}"),
        USAGE,
        "Connection refused",
        {"WAREHOUSE_DATABASE_URL": "{warehouse:unreachable}"},
    ),
    "redshift serve: plaintext": Case(
        ("redshift", "serve", "--port", "{port}"),
        USAGE,
        "no encryption",
        {"WAREHOUSE_DATABASE_URL": "{warehouse:plaintext}"},
    ),
    "redshift serve: an unknown sslmode": Case(
        ("redshift", "serve", "--port", "{port}"),
        USAGE,
        "sslmode='bogus' is not one of",
        {"WAREHOUSE_DATABASE_URL": "{warehouse}?sslmode=bogus"},
    ),
    "redshift serve: a port out of range": Case(
        ("redshift", "serve", "--port", "99999"), USAGE, r"--port='99999' is not a TCP port"
    ),
    "redshift serve: an address it cannot listen on": Case(
        ("redshift", "serve", "--host", "nosuch.invalid", "--port", "{port}"),
        USAGE,
        "cannot listen on nosuch.invalid",
    ),
}


def variant(url: str, kind: str) -> str:
    """``url`` made bad in one way."""
    parts = urlsplit(url)
    user = parts.username or ""
    if kind == "wrong-password":
        return urlunsplit(
            parts._replace(netloc=f"{user}:not-the-password@{parts.hostname}:{parts.port}")
        )
    if kind == "unreachable":
        return urlunsplit(parts._replace(netloc=f"{user}:x@127.0.0.1:{free_port()}"))
    if kind == "unknown-host":
        return urlunsplit(parts._replace(netloc=f"{user}:x@no-such-host.invalid:5432"))
    if kind == "plaintext":
        return f"{url}?sslmode=disable"
    raise AssertionError(kind)


@pytest.fixture(scope="module")
def databases(
    source_server: PostgresServer, warehouse_server: PostgresServer
) -> Iterator[dict[str, str]]:
    """A migrated source database and an empty warehouse database, for every case."""
    source = source_server.create_database("badinput")
    warehouse = warehouse_server.create_database("badinput")
    upgrade(source_server.url(source))
    try:
        yield {"source": source_server.url(source), "warehouse": warehouse_server.url(warehouse)}
    finally:
        source_server.drop_database(source)
        warehouse_server.drop_database(warehouse)


def fill(text: str, urls: dict[str, str], port: int) -> str:
    def replace(match: re.Match[str]) -> str:
        name, _, kind = match.group(1).partition(":")
        if name == "port":
            return str(port)
        return variant(urls[name], kind) if kind else urls[name]

    return re.sub(r"\{([a-z-]+(?::[a-z-]+)?)\}", replace, text)


def environment(urls: dict[str, str], extra: dict[str, str], tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")}
    return {
        **env,
        "SOURCE_DATABASE_URL": urls["source"],
        "WAREHOUSE_DATABASE_URL": urls["warehouse"],
        "ZETL_REDSHIFT_TLS_DIR": str(tmp_path / "tls"),
        "ZETL_LOG_LEVEL": "WARNING",
        **extra,
    }


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_gets_one_line_and_its_exit_code(
    case: Case, databases: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    args = [fill(arg, databases, port) for arg in case.args]
    extra = {name: fill(value, databases, port) for name, value in case.env.items()}
    done = subprocess.run(
        [*ZETL, *args],
        cwd=ROOT,
        env=environment(databases, extra, tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("zetl: error: ")]
    assert len(errors) == 1, done.stderr
    assert re.search(case.message, errors[0]), errors[0]
    assert "not-the-password" not in done.stderr, "a password reached the output"
    assert done.returncode == case.code, done.stderr


def test_replicate_waits_for_an_unreachable_source_and_stops_cleanly(
    databases: dict[str, str], tmp_path: Path
) -> None:
    """A service, not a one-shot: an unreachable source is waited for (it may be restarting),
    one warning line per attempt and no traceback, until it is stopped."""
    extra = {"SOURCE_DATABASE_URL": variant(databases["source"], "unreachable")}
    process = subprocess.Popen(
        [*ZETL, "replicate"],
        cwd=ROOT,
        env=environment(databases, extra, tmp_path),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 120
        line = ""
        while "reconnecting" not in line and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line and process.poll() is not None:
                break
        assert "reconnecting" in line and "Connection refused" in line, line
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert "Traceback" not in rest, rest
    assert process.returncode == 0, rest
