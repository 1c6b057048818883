"""No default password is ever used silently: compose starts nothing without the passwords the
user put in ``.env`` (copied from ``.env.example`` and changed), and says which one is missing.

The rule is docker-compose.yml's: every password is ``${NAME:?...}``, which Compose refuses to
start without (``docker compose config`` checks the same interpolation ``up`` does).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
# Every reference to a password variable, with what follows its name (":?...", ":-...", "").
PASSWORD_REFERENCE = re.compile(r"\$\{(\w*PASSWORD\w*)([^}]*)\}")


def example_passwords() -> dict[str, str]:
    """The NAME=value lines of .env.example whose name says PASSWORD."""
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and "PASSWORD" in name and not name.startswith("#"):
            values[name.strip()] = value.strip()
    return values


def test_every_password_compose_uses_is_required_without_a_default() -> None:
    references = PASSWORD_REFERENCE.findall(COMPOSE_FILE.read_text())
    assert references, "docker-compose.yml names no password at all"
    defaulted = sorted({name for name, rest in references if not rest.startswith(":?")})
    assert defaulted == [], f"passwords with a default or none required: {defaulted}"
    # Each server and role password compose passes is one .env.example documents.
    assert {name for name, _ in references} <= set(example_passwords())


def test_no_password_of_env_example_is_written_anywhere_a_service_reads() -> None:
    """Nothing that builds or starts a service carries .env.example's values itself."""
    values = set(example_passwords().values())
    assert values, ".env.example documents no password"
    places = [COMPOSE_FILE, *ROOT.glob("compose/**/*"), *ROOT.glob("**/Dockerfile")]
    places += [ROOT / "Makefile", ROOT / "transform" / "profiles.yml"]
    for path in places:
        if path.is_file() and ".venv" not in path.parts:
            text = path.read_text(errors="replace")
            found = sorted(value for value in values if value in text)
            assert found == [], f"{path.relative_to(ROOT)} holds {found}"


def compose_command() -> list[str]:
    if (configured := os.environ.get("COMPOSE")) is not None:
        return configured.split()
    if (
        shutil.which("docker")
        and subprocess.run(
            ["docker", "compose", "version"], capture_output=True, check=False
        ).returncode
        == 0
    ):
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.skip("neither `docker compose` nor `docker-compose` is installed")


def compose_config(env_file: Path) -> subprocess.CompletedProcess[str]:
    """``compose config`` with only ``env_file`` for variables: what ``up`` would start."""
    environment = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    return subprocess.run(
        [*compose_command(), "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config"],
        cwd=env_file.parent,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_compose_refuses_to_start_without_the_users_passwords(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("")
    refused = compose_config(env_file)
    assert refused.returncode != 0
    assert re.search(r"set \w*PASSWORD in \.env, see \.env\.example", refused.stderr), (
        refused.stderr
    )
    # One password left out is enough to refuse, and the message names it.
    copied = {**example_passwords()}
    del copied["ZETL_APP_PASSWORD"]
    env_file.write_text("".join(f"{name}={value}\n" for name, value in copied.items()))
    refused = compose_config(env_file)
    assert refused.returncode != 0
    assert "set ZETL_APP_PASSWORD in .env" in refused.stderr, refused.stderr


def test_compose_starts_with_the_passwords_the_user_copied(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    chosen = {name: f"chosen-{index}" for index, name in enumerate(example_passwords())}
    env_file.write_text("".join(f"{name}={value}\n" for name, value in chosen.items()))
    accepted = compose_config(env_file)
    assert accepted.returncode == 0, accepted.stderr
    assert "chosen-" in accepted.stdout
    leaked = sorted(v for v in example_passwords().values() if v in accepted.stdout)
    assert leaked == [], f".env.example's passwords in the configuration: {leaked}"
    # .env.example itself, copied as it is: its placeholders, because the user chose them.
    shutil.copy(ENV_EXAMPLE, env_file)
    assert compose_config(env_file).returncode == 0
