"""One real `reasoner serve` subprocess for the server's engine tests, started on first use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server.serve_process import RunningServer, start_server, stop_server


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The real server, shared by every engine test of the server (the shutdown test runs last and stops it)."""
    server = start_server(tmp_path_factory.mktemp("serve") / "serve.log")
    yield server
    stop_server(server)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The SIGTERM test stops the shared server: run it after every other test."""
    items.sort(key=lambda item: item.get_closest_marker("stops_server") is not None)
