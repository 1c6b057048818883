"""The exports are reproducible from their seed, and the shipped sample is their output (that
they load with the real loader is tests/exports: generator and loader together)."""

from __future__ import annotations

from pathlib import Path

from zetl_generator.export_players import write_players_export
from zetl_generator.export_storefront import StorefrontExport


def files(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def test_exports_are_deterministic_by_seed(tmp_path: Path) -> None:
    for run in ("a", "b"):
        write_players_export(tmp_path / run / "players", 200, seed=4)
        StorefrontExport(seed=4, messy=True).write(tmp_path / run / "storefront", 500)
    for kind in ("players", "storefront"):
        assert files(tmp_path / "a" / kind) == files(tmp_path / "b" / kind)
    StorefrontExport(seed=5, messy=True).write(tmp_path / "c", 500)
    assert files(tmp_path / "c") != files(tmp_path / "a" / "storefront")


def test_the_shipped_sample_is_the_generators_output(tmp_path: Path) -> None:
    """data/raw is what `make sample-data` writes: regenerate it after changing an export."""
    StorefrontExport(seed=1, messy=True).write(tmp_path, 400)
    write_players_export(tmp_path, 200, seed=1)
    shipped = Path(__file__).resolve().parents[3] / "data" / "raw"
    assert files(tmp_path) == {k: v for k, v in files(shipped).items() if k.endswith(".csv")}
