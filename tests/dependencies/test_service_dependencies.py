"""Each package depends on what it imports, and each image installs exactly that.

The packages under services/ are read from their pyproject.toml and their source; what a
third-party requirement pulls in is read from the installed metadata of the project's venv
(the same versions the images resolve). No image is built: the images install the same
pyproject files with pip, so their contents follow from what is checked here.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]

# The domain model's stack: a service that does not use the source schema must not install it.
DOMAIN_STACK = {"sqlalchemy", "alembic", "zetl-schema"}

# Services that never touch the source schema (the replicator is generic CDC).
WITHOUT_DOMAIN_MODEL = ["zetl-replicator", "zetl-dashboard", "zetl-transform"]

# Requirements a package declares without importing them, each loaded by name at run time.
LOADED_BY_NAME = {
    "zetl-transform": {"dbt-postgres", "dbt-redshift"},  # dbt adapters, chosen by profile
    "zetl-quality": {"sqlalchemy-redshift"},  # the SQLAlchemy dialect of redshift+psycopg2://
}

# Modules of the checkout itself a package imports, for a tool that only runs from the checkout:
# `make erd` (zetl.schema.erd) starts its throwaway Postgres with the test harness.
FROM_THE_CHECKOUT = {"zetl-schema": {"not installed: tests"}}

# Each image's Dockerfile, and the packages it exists to run.
IMAGES = {
    "services/loader/Dockerfile": ["zetl-loader"],
    "services/generator/Dockerfile": ["zetl-generator"],
    "services/replicator/Dockerfile": ["zetl-replicator"],
    "services/dashboard/Dockerfile": ["zetl-dashboard"],
    "services/quality/Dockerfile": ["zetl-quality"],
    "services/redshift/Dockerfile": ["zetl-redshift"],
    "transform/Dockerfile": ["zetl-transform"],
    "orchestration/Dockerfile": ["zetl-replicator", "zetl-quality", "zetl-transform"],
}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Package:
    """One package of services/: where it lives, what it declares, what it imports."""

    name: str
    directory: Path
    requires: tuple[Requirement, ...]

    @property
    def first_party(self) -> set[str]:
        return {canonical(r.name) for r in self.requires} & set(packages())

    def modules(self) -> Iterator[Path]:
        return (self.directory / "src").rglob("*.py")


@cache
def packages() -> dict[str, Package]:
    found = {}
    for pyproject in sorted(ROOT.glob("services/*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text())["project"]
        name = canonical(project["name"])
        requires = tuple(Requirement(r) for r in project.get("dependencies", []))
        found[name] = Package(name, pyproject.parent, requires)
    return found


@cache
def first_party_modules() -> dict[str, str]:
    """Each module of services/ (dotted name) and the package that holds it. zetl is shared:
    zetl.schema is zetl-schema's, zetl.db zetl's."""
    owners = {}
    for package in packages().values():
        src = package.directory / "src"
        for path in package.modules():
            parts = path.relative_to(src).with_suffix("").parts
            owners[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = package.name
    return owners


def first_party_owner(module: str) -> str | None:
    """The package of services/ whose source holds ``module`` (or the module that defines the
    name ``module`` ends in), or None."""
    parts = module.split(".")
    while parts:
        owner = first_party_modules().get(".".join(parts))
        if owner is not None:
            return owner
        parts.pop()
    return None


def imported_modules(package: Package) -> set[str]:
    """Every absolute import in the package's source, function bodies included (the heavy
    imports of a command live there)."""
    names: set[str] = set()
    for path in package.modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def providers(module: str) -> set[str]:
    """The distributions that provide ``module``: a package of services/, or third-party."""
    owner = first_party_owner(module)
    if owner is not None:
        return {owner}
    top = module.split(".")[0]
    if top in sys.stdlib_module_names:
        return set()
    # A module nothing installed provides is reported under its own name: never "no need".
    return {canonical(d) for d in third_party().get(top, [f"not installed: {top}"])}


@cache
def third_party() -> Mapping[str, list[str]]:
    return packages_distributions()


def first_party_closure(name: str) -> set[str]:
    """``name`` and the packages of services/ it needs, directly or not."""
    seen = {name}
    pending = [name]
    while pending:
        for dependency in packages()[pending.pop()].first_party - seen:
            seen.add(dependency)
            pending.append(dependency)
    return seen


def declared(name: str) -> set[str]:
    """What ``name`` may import: its own requirements and those of the packages of services/
    it needs (the shared basics declare typer, psycopg2 once for every service)."""
    return {
        canonical(r.name) for p in first_party_closure(name) for r in packages()[p].requires
    } | first_party_closure(name)


def installed_closure(name: str) -> set[str]:
    """Every distribution a plain ``pip install`` of ``name`` installs: the packages of
    services/ from their pyproject.toml, the third-party ones from the venv's metadata."""
    seen: set[str] = set()
    pending = [Requirement(name)]
    while pending:
        requirement = pending.pop()
        key = canonical(requirement.name)
        if key in seen:
            continue
        seen.add(key)
        if key in packages():  # as the checkout declares it, whatever the venv installed
            pending.extend(packages()[key].requires)
            continue
        try:
            requires = distribution(key).requires or []
        except PackageNotFoundError:
            continue  # a requirement for another platform (marker), never installed here
        for line in requires:
            nested = Requirement(line)
            wanted = requirement.extras or {""}
            if nested.marker is None or any(nested.marker.evaluate({"extra": e}) for e in wanted):
                pending.append(nested)
    return seen


@pytest.mark.parametrize("name", sorted(packages()))
def test_a_package_imports_only_what_it_declares(name: str) -> None:
    package = packages()[name]
    allowed = declared(name) | FROM_THE_CHECKOUT.get(name, set())
    undeclared = {
        module: sorted(found)
        for module in imported_modules(package)
        if (found := providers(module)) and not found & allowed
    }
    assert undeclared == {}, f"{name} imports what its pyproject.toml does not declare"


@pytest.mark.parametrize("name", sorted(packages()))
def test_a_package_declares_only_what_it_imports(name: str) -> None:
    package = packages()[name]
    used = set().union(*(providers(m) for m in imported_modules(package)))
    unused = {canonical(r.name) for r in package.requires} - used - LOADED_BY_NAME.get(name, set())
    assert unused == set(), f"{name} declares requirements its source never imports"


@pytest.mark.parametrize("name", WITHOUT_DOMAIN_MODEL)
def test_a_service_without_the_domain_model_installs_none_of_its_stack(name: str) -> None:
    assert installed_closure(name) & DOMAIN_STACK == set()


def test_the_replicator_runs_with_the_domain_stack_absent() -> None:
    """Every replicator module imports, and its command line answers, with SQLAlchemy and
    Alembic made unimportable: nothing it runs reaches for them, not even lazily at start."""
    modules = sorted(
        ".".join(path.relative_to(ROOT / "services/replicator/src").with_suffix("").parts)
        for path in packages()["zetl-replicator"].modules()
    )
    code = (
        "import importlib, sys\n"
        "for blocked in ('sqlalchemy', 'alembic', 'zetl.schema'):\n"
        "    sys.modules[blocked] = None\n"
        f"for module in {modules!r}:\n"
        "    importlib.import_module(module)\n"
        "sys.argv = ['zetl', 'replicate', '--help']\n"
        "from zetl.cli import main\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Usage: zetl replicate" in result.stdout


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_an_image_installs_exactly_the_packages_its_service_needs(dockerfile: str) -> None:
    text = (ROOT / dockerfile).read_text()
    installed = set(re.findall(r"\./services/([a-z]+)", text))
    copied = set(re.findall(r"^COPY services/([a-z]+) ", text, re.MULTILINE))
    closure = set().union(*(first_party_closure(name) for name in IMAGES[dockerfile]))
    needed = {packages()[name].directory.name for name in closure}
    assert (installed, copied) == (needed, needed)
