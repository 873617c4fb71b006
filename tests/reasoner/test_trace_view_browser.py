"""The trace page in a real browser: headless Chromium renders one scripted solve of four strategies.

One Chromium launch per page gives the DOM after the page's script ran and a screenshot; the
four run at once. Where Chromium is missing the tests skip saying so, except in CI (`CI` set),
where they fail: `.ci/run` installs Debian's `chromium` first.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import networkx as nx
import numpy as np
import pytest

from reasoner import Solution
from tests.reasoner.trace_solves import STRATEGY_RUNS, scripted_solve

pytestmark = pytest.mark.xdist_group("trace_browser")  # one worker renders the four pages, once
LAUNCH_TIMEOUT_S = 60
WINDOW = (1280, 900)
PATH_RED = np.array([214, 39, 40]) / 255  # the page's colour for the chosen path (#d62728)


@dataclass
class Rendered:
    solution: Solution
    dom: str
    screenshot: Path
    seconds: float


class _Dom(HTMLParser):
    """The trace page's node groups (classes, index), the root's and body's attributes, the title and the text pane."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[tuple[set[str], int]] = []
        self.root: dict[str, str | None] = {}
        self.body: dict[str, str | None] = {}
        self.title = ""
        self.segment_text = ""
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        classes = set((named.get("class") or "").split())
        if tag == "g" and "node" in classes:
            self.nodes.append((classes, int(named["data-index"] or -1)))
        elif tag == "html":
            self.root = named
        elif tag == "body":
            self.body = named
        self._in = "title" if tag == "title" else "text" if "segment-text" in classes else None

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "title":
            self.title += data
        elif self._in == "text":
            self.segment_text += data


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed, and CI must run the browser tests (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium): the trace page's browser tests did not run")
    return found


def render(browser: str, page: Path, workdir: Path) -> tuple[str, Path, float]:
    """The DOM after the page's script ran, and a screenshot, from one headless Chromium launch."""
    screenshot = workdir / f"{page.stem}.png"
    started = time.monotonic()
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={workdir / (page.stem + '-profile')}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            f"--screenshot={screenshot}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=LAUNCH_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, screenshot, time.monotonic() - started


@pytest.fixture(scope="module")
def rendered() -> Iterator[dict[str, Rendered]]:
    browser = chromium()
    with tempfile.TemporaryDirectory(prefix="trace-pages-") as folder:
        workdir = Path(folder)
        solutions = {strategy: scripted_solve(strategy) for strategy in STRATEGY_RUNS}
        pages = {}
        for strategy, solution in solutions.items():
            pages[strategy] = workdir / f"{strategy}.html"
            pages[strategy].write_text(solution.trace_html(), encoding="utf-8")
        with ThreadPoolExecutor(len(pages)) as pool:
            futures = {strategy: pool.submit(render, browser, page, workdir) for strategy, page in pages.items()}
            results = {strategy: future.result() for strategy, future in futures.items()}
        yield {strategy: Rendered(solutions[strategy], *results[strategy]) for strategy in solutions}


def expected_path(solution: Solution) -> set[int]:
    """The chosen segment (marked, else the last one that generated an answer) and its ancestors."""
    graph = solution.trace
    chosen = [node for node, attrs in graph.nodes(data=True) if attrs.get("chosen")]
    if not chosen:
        chosen = [max(node for node, attrs in graph.nodes(data=True) if attrs["kind"] == "answer")]
    return set(chosen).union(*(nx.ancestors(graph, node) for node in chosen))


def dom_of(result: Rendered) -> _Dom:
    dom = _Dom()
    dom.feed(result.dom)
    return dom


@pytest.mark.parametrize("strategy", list(STRATEGY_RUNS))
def test_the_page_draws_every_segment_and_highlights_the_chosen_path(
    rendered: dict[str, Rendered], strategy: str
) -> None:
    result = rendered[strategy]
    dom = dom_of(result)
    graph = result.solution.trace
    assert dom.body.get("data-rendered") == str(graph.number_of_nodes())  # the page's script ran to its end
    assert len(dom.nodes) == graph.number_of_nodes()
    assert sorted(index for _, index in dom.nodes) == list(range(graph.number_of_nodes()))
    on_path = {index for classes, index in dom.nodes if "on-path" in classes}
    assert on_path == expected_path(result.solution)
    assert 0 < len(on_path) <= graph.number_of_nodes()
    selected = [index for classes, index in dom.nodes if "selected" in classes]
    assert len(selected) == 1 and selected[0] in on_path


@pytest.mark.parametrize("strategy", list(STRATEGY_RUNS))
def test_a_script_in_model_text_shows_as_text_and_never_runs(rendered: dict[str, Rendered], strategy: str) -> None:
    dom = dom_of(rendered[strategy])
    assert dom.title.startswith("reasoner trace: ") and "PWNED" not in dom.title
    assert "data-pwned" not in dom.root and "data-pwned" not in rendered[strategy].dom.replace("'data-pwned'", "")
    assert "<script>document.title='PWNED'" in dom.segment_text  # shown, as the characters the model wrote


@pytest.mark.parametrize("strategy", list(STRATEGY_RUNS))
def test_the_screenshot_shows_the_graph_with_the_path_in_red(rendered: dict[str, Rendered], strategy: str) -> None:
    result = rendered[strategy]
    image = matplotlib.image.imread(io.BytesIO(result.screenshot.read_bytes()), format="png")[..., :3]
    assert image.shape[:2] == (WINDOW[1], WINDOW[0])
    red = np.all(np.abs(image - PATH_RED) < 0.03, axis=-1).sum()
    assert red > 100, f"only {red} pixels of the chosen path's red"
    assert result.seconds < LAUNCH_TIMEOUT_S


def test_without_chromium_ci_fails_and_elsewhere_the_tests_skip_saying_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the browser tests"):
        chromium()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match=r"^chromium is not installed \(apt-get install chromium\)"):
        chromium()
