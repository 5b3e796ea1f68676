"""Data shipped inside the package (bundled tau-bench data, built-in personas and rubrics)."""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path


def asset_path(*parts: str) -> Path:
    """Filesystem path of a bundled asset (the package is installed unzipped)."""
    resource = files(__name__).joinpath(*parts)
    with as_file(resource) as p:
        return Path(p)


def tau_airline_runs() -> Path:
    """The bundled tau-bench airline run records (gzip-compressed JSON list)."""
    return asset_path("tau_bench", "gpt-4o-airline.json.gz")


def shipped(kind: str) -> Path:
    """The shipped ``personas`` or ``rubrics`` folder.

    A wheel carries them inside the package; a source checkout (an editable install)
    has them at the repository root.
    """
    inside = asset_path(kind)
    if inside.is_dir():
        return inside
    checkout = Path(__file__).resolve().parents[2] / kind
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"no shipped {kind!r} folder in {inside} or {checkout}")
