"""The report's plots: what the figure, the SVG and the HTML page hold, against figures computed here."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ElementTree
from html.parser import HTMLParser
from typing import Any

import matplotlib.image
import numpy as np
import pytest

from evals.plots import plot_format, plot_report, render_html, render_plot
from evals.report import Report, build_report
from evals.stats import bootstrap_mean
from reasoner.errors import InputError
from reasoner.output_files import is_ours

STRATEGIES = ("direct", "elastic", "self_consistency")
BUDGETS = (64, 128, 256)
PROBLEMS = 10
SVG_NS = {"svg": "http://www.w3.org/2000/svg"}


def solved(suite: str, strategy: int, budget: int, problem: int) -> bool:
    """A fixed pattern: more budget and later strategies solve more, differently per suite."""
    return (problem * 7 + strategy * 3 + budget // 64 + len(suite)) % PROBLEMS < 2 + strategy + budget // 64


def tokens(strategy: int, budget: int, problem: int) -> int:
    return budget // 2 + strategy * budget // 4 + problem


def cost(strategy: int, budget: int, problem: int) -> float:
    """eFLOPs: not in proportion to tokens (later strategies cost more per token), so its front differs."""
    return tokens(strategy, budget, problem) * (1 + 2 * strategy) * 1e8


def records(
    suites: tuple[str, ...] = ("arith", "gsm8k"), priced: tuple[str, ...] = (), **options: Any
) -> list[dict[str, Any]]:
    made = []
    for suite in suites:
        for index, strategy in enumerate(STRATEGIES):
            for budget in BUDGETS:
                for problem in range(PROBLEMS):
                    made.append(
                        {
                            "key": f"{suite}|{problem}|{strategy}|{budget}",
                            "suite": suite,
                            "problem_id": str(problem),
                            "strategy": strategy,
                            "budget": budget,
                            "options": options if index == 0 else {},
                            "correct": solved(suite, index, budget, problem),
                            "usage": {"generated_tokens": tokens(index, budget, problem)}
                            | ({"cost": cost(index, budget, problem)} if suite in priced else {}),
                            "latency_s": 0.1,
                        }
                    )
    return made


def expected_points(suite: str, strategy: int) -> tuple[list[float], list[float], list[float], list[float]]:
    """(mean tokens, accuracy, interval low, interval high) per budget, from the pattern above."""
    xs, ys, lows, highs = [], [], [], []
    for budget in BUDGETS:
        outcomes = [1.0 if solved(suite, strategy, budget, p) else 0.0 for p in range(PROBLEMS)]
        interval = bootstrap_mean(outcomes)
        xs.append(sum(tokens(strategy, budget, p) for p in range(PROBLEMS)) / PROBLEMS)
        ys.append(sum(outcomes) / PROBLEMS)
        lows.append(interval.low)
        highs.append(interval.high)
    return xs, ys, lows, highs


@pytest.fixture(scope="module")
def report() -> Report:
    return build_report(records())


def test_each_suite_is_a_panel_with_its_axes_named(report: Report) -> None:
    figure = plot_report(report)
    panels = [axes for axes in figure.axes if axes.get_visible()]
    assert [axes.get_title() for axes in panels] == ["arith", "gsm8k"]
    for axes in panels:
        assert axes.get_xlabel() == "mean generated tokens per problem"
        assert axes.get_ylabel() == "accuracy (95% CI)"


def test_each_strategy_is_one_line_through_its_budgets_at_the_records_figures(report: Report) -> None:
    figure = plot_report(report)
    for axes, suite in zip(figure.axes, ("arith", "gsm8k"), strict=True):
        series = {container.get_label(): container for container in axes.containers}
        assert sorted(series) == sorted(STRATEGIES)
        for index, strategy in enumerate(STRATEGIES):
            xs, ys, lows, highs = expected_points(suite, index)
            data_line, _, (bars,) = series[strategy].lines
            assert list(data_line.get_xdata()) == pytest.approx(xs)
            assert list(data_line.get_ydata()) == pytest.approx(ys)
            segments = bars.get_segments()
            assert [segment[0][1] for segment in segments] == pytest.approx(lows)
            assert [segment[1][1] for segment in segments] == pytest.approx(highs)
        budgets = sorted(text.get_text() for text in axes.texts)
        assert budgets == sorted(str(budget) for budget in BUDGETS for _ in STRATEGIES)


def test_the_pareto_front_marks_exactly_the_undominated_points(report: Report) -> None:
    figure = plot_report(report)
    for axes, suite in zip(figure.axes, ("arith", "gsm8k"), strict=True):
        points = [point for index in range(3) for point in zip(*expected_points(suite, index)[:2], strict=True)]
        undominated = sorted(
            (x, y) for x, y in points if not any(ox <= x and oy >= y and (ox, oy) != (x, y) for ox, oy in points)
        )
        front = next(line for line in axes.lines if line.get_label() == "Pareto front")
        assert list(front.get_xdata()) == pytest.approx([x for x, _ in undominated])
        assert list(front.get_ydata()) == pytest.approx([y for _, y in undominated])
        assert 0 < len(undominated) < len(points)


def test_a_suite_whose_records_all_carry_cost_gets_a_second_panel_against_cost() -> None:
    figure = plot_report(build_report(records(priced=("arith",))))
    shown = [axes for axes in figure.axes if axes.get_visible()]
    assert [(axes.get_title(), axes.get_xlabel()) for axes in shown] == [
        ("arith", "mean generated tokens per problem"),
        ("arith", "mean cost per problem (eFLOPs)"),
        ("gsm8k", "mean generated tokens per problem"),
    ]
    costs = {container.get_label(): list(container.lines[0].get_xdata()) for container in shown[1].containers}
    points = []
    for index, strategy in enumerate(STRATEGIES):
        expected = [sum(cost(index, budget, p) for p in range(PROBLEMS)) / PROBLEMS for budget in BUDGETS]
        assert costs[strategy] == pytest.approx(expected)
        points += list(zip(expected, expected_points("arith", index)[1], strict=True))
    front = next(line for line in shown[1].lines if line.get_label() == "Pareto front")
    undominated = sorted(
        (x, y) for x, y in points if not any(ox <= x and oy >= y and (ox, oy) != (x, y) for ox, oy in points)
    )
    assert list(front.get_xdata()) == pytest.approx([x for x, _ in undominated])
    by_tokens = next(line for line in shown[0].lines if line.get_label() == "Pareto front")
    assert len(front.get_xdata()) != len(by_tokens.get_xdata())  # a front of its own, not the tokens' one


def svg_root(report: Report) -> ElementTree.Element:
    svg = render_plot(report, "svg")
    assert is_ours(svg[:4096])
    return ElementTree.fromstring(svg)


def test_the_svg_keeps_its_labels_as_text_and_draws_one_marker_per_point(report: Report) -> None:
    root = svg_root(report)
    texts = {"".join(node.itertext()).strip() for node in root.iter("{http://www.w3.org/2000/svg}text")}
    assert {"arith", "gsm8k", "Pareto front", "mean generated tokens per problem", *STRATEGIES} <= texts
    groups = {group.get("id"): group for group in root.iter("{http://www.w3.org/2000/svg}g")}
    for panel in ("0-0", "1-0"):
        for index in range(len(STRATEGIES)):
            assert len(groups[f"series-{panel}-{index}"].findall(".//svg:use", SVG_NS)) == len(BUDGETS)
        front = groups[f"pareto-{panel}"].findall(".//svg:use", SVG_NS)
        assert 0 < len(front) < len(BUDGETS) * len(STRATEGIES)


def test_the_png_is_the_figure_rendered_and_carries_our_mark(report: Report) -> None:
    png = render_plot(report, "png")
    assert is_ours(png[:4096])
    image = matplotlib.image.imread(io.BytesIO(png), format="png")
    width, height = plot_report(report).get_size_inches() * 110
    assert image.shape[:2] == (round(height), round(width))
    assert np.unique(image.reshape(-1, image.shape[-1]), axis=0).shape[0] > 50  # drawn on, not blank


class _Page(HTMLParser):
    """Tags, their attributes and the table cells of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.cells: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_cell = tag == "td"
        if self._in_cell:
            self.cells.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_cell = self._in_cell and tag != "td"

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.cells[-1] += data


def test_the_html_page_holds_the_table_and_the_inline_plot_and_fetches_nothing(report: Report) -> None:
    page = render_html(report)
    assert is_ours(page.encode()[:4096])
    parser = _Page()
    parser.feed(page)
    names = [tag for tag, _ in parser.tags]
    assert "script" not in names and "link" not in names and "img" not in names
    fetching = ("src", "href", "xlink:href", "data", "action", "srcset")
    assert not [attrs for _, attrs in parser.tags if any(re.match(r"\w+:|//", attrs.get(a) or "") for a in fetching)]
    assert not re.search(r"url\((?!#)", page) and "@import" not in page  # url(#id) is the page's own clip path
    assert names.count("svg") == 1 and names.count("table") == 2
    for suite in ("arith", "gsm8k"):
        for index in range(len(STRATEGIES)):
            xs, ys, _, _ = expected_points(suite, index)
            for x, y in zip(xs, ys, strict=True):
                assert f"{100 * y:.1f}%" in parser.cells and f"{x:.1f}" in parser.cells
    assert parser.cells.count("direct") == 2 * len(BUDGETS)


def test_labels_from_the_records_stay_text_in_the_svg_and_the_html() -> None:
    hostile = build_report(records(("<b>x</b>",), note="<script>alert(1)</script> $\\frac$"))
    svg = render_plot(hostile, "svg").decode()
    page = render_html(hostile)
    for text in (svg, page):
        assert "<script" not in text and "<b>" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    ElementTree.fromstring(svg.encode())  # still well-formed XML


@pytest.mark.parametrize(("name", "expected"), [("a.png", "png"), ("plots/a.SVG", "svg"), ("r.v2.html", "html")])
def test_the_file_name_picks_the_format(name: str, expected: str) -> None:
    assert plot_format(name) == expected


@pytest.mark.parametrize("name", ["a.pdf", "plot", "dir.png/plot", "a.htm"])
def test_a_name_without_a_plot_extension_is_refused(name: str) -> None:
    with pytest.raises(InputError, match=r"\.png, \.svg or \.html"):
        plot_format(name)
