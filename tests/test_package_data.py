"""Every data file a package reads at run time ships in the wheel, not only in an editable install."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("reasoner", "strategies", "controllers", "evals", "server", "cli")


def shipped_globs() -> dict[str, list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return dict(config["tool"]["setuptools"]["package-data"])


def data_files(package: str) -> list[str]:
    """Files of the package that are not Python source, relative to the package folder."""
    folder = ROOT / package
    return sorted(
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and path.suffix not in {".py", ".pyc"} and "__pycache__" not in path.parts
    )


def test_every_data_file_of_a_package_matches_its_package_data_globs() -> None:
    globs = shipped_globs()
    missing = [
        f"{package}/{name}"
        for package in PACKAGES
        for name in data_files(package)
        if not any(fnmatch(name, pattern) for pattern in globs.get(package, []))
    ]
    assert missing == []


def test_the_trace_page_assets_are_among_the_shipped_files() -> None:
    assert {"static/trace_view.js", "static/trace_view.css"} <= set(data_files("reasoner"))
