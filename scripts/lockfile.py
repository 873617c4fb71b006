"""The environment lock: read it, check it against pyproject.toml, check an environment against it.

`requirements/<engine>.lock` pins the whole dependency tree (exact versions and hashes) that the
README's commands install, one lock per engine (`cpu`, `gpu`). `make lock` writes them with uv;
this module is what reads them:

    python scripts/lockfile.py check-pyproject cpu   # every requirement of pyproject.toml is pinned, satisfied
    python scripts/lockfile.py check-installed cpu   # the running environment is exactly the lock
    python scripts/lockfile.py unlocked cpu          # installed packages the lock does not pin

The checks exit 1 with one line per disagreement, so an install from a stale lock fails loudly. It runs
in the project's venv after the lock is installed (it needs `packaging`, which the lock pins).
"""

from __future__ import annotations

import re
import sys
import sysconfig
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
ENGINES = ("cpu", "gpu")
# Not the project's dependencies: the installer itself and the project.
NOT_LOCKED = ("pip", "reasoner")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


@dataclass(frozen=True)
class Disagreement:
    """One way an environment or pyproject.toml differs from the lock."""

    package: str
    wanted: str
    found: str

    def __str__(self) -> str:
        return f"{self.package}: wanted {self.wanted}, found {self.found}"


def lock_path(engine: str) -> Path:
    if engine not in ENGINES:
        raise SystemExit(f"lockfile.py: engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    return REPO / "requirements" / f"{engine}.lock"


def read_pins(path: Path) -> dict[str, Version]:
    """Canonical package name -> pinned version, from a hashed requirements file."""
    pins = {}
    for line in path.read_text().splitlines():
        match = _PIN.match(line)
        if match:
            pins[canonicalize_name(match.group(1))] = Version(match.group(2))
    return pins


def project_requirements(engine: str, pyproject: Path = REPO / "pyproject.toml") -> list[Requirement]:
    """The requirements pyproject.toml declares for an install with extras `engine` and `test`."""
    import tomllib

    project = tomllib.loads(pyproject.read_text())["project"]
    extras = project.get("optional-dependencies", {})
    return [Requirement(text) for text in [*project["dependencies"], *extras[engine], *extras["test"]]]


def pyproject_disagreements(
    engine: str, lock: Path | None = None, pyproject: Path = REPO / "pyproject.toml"
) -> list[Disagreement]:
    """Requirements of pyproject.toml that the lock does not pin, or pins outside their range."""
    pins = read_pins(lock or lock_path(engine))
    found = []
    for requirement in project_requirements(engine, pyproject):
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        pinned = pins.get(canonicalize_name(requirement.name))
        if pinned is None or not requirement.specifier.contains(pinned, prereleases=True):
            found.append(Disagreement(requirement.name, str(requirement.specifier) or "any", str(pinned or "no pin")))
    return found


def installed_versions() -> dict[str, Version]:
    """Canonical name -> version of every distribution installed in the running environment.

    Only its site-packages count: a package's vendored copies that it puts on `sys.path` at run
    time (setuptools puts its own `packaging`, `wheel`... there) are not installed.
    """
    paths = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    return {
        canonicalize_name(dist.metadata["Name"]): Version(dist.version) for dist in metadata.distributions(path=paths)
    }


def unlocked_packages(engine: str) -> list[str]:
    """Installed distributions the lock does not pin (the installer and the project aside)."""
    pins = read_pins(lock_path(engine))
    return sorted(name for name in installed_versions() if name not in pins and name not in NOT_LOCKED)


def installed_disagreements(engine: str) -> list[Disagreement]:
    """Distributions of the running environment that differ from the lock, either way."""
    pins = read_pins(lock_path(engine))
    installed = installed_versions()
    found = [
        Disagreement(name, str(version), str(installed.get(name, "not installed")))
        for name, version in sorted(pins.items())
        if installed.get(name) != version
    ]
    found += [
        Disagreement(name, "not installed (not in the lock)", str(installed[name]))
        for name in unlocked_packages(engine)
    ]
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("check-pyproject", "check-installed", "unlocked"):
        print("usage: lockfile.py check-pyproject|check-installed|unlocked cpu|gpu", file=sys.stderr)
        return 2
    command, engine = argv
    if command == "unlocked":
        print(" ".join(unlocked_packages(engine)))
        return 0
    if command == "check-pyproject":
        found, what = pyproject_disagreements(engine), "does not satisfy pyproject.toml"
    else:
        found, what = installed_disagreements(engine), "differs from this environment"
    for disagreement in found:
        print(f"{lock_path(engine).relative_to(REPO)} {what}: {disagreement}", file=sys.stderr)
    if found:
        print("refresh the lock with `make lock` (or reinstall from it with `make install`)", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
