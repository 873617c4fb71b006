"""Plots of the report: accuracy against what it cost, per strategy across budgets.

One panel per suite and measure: accuracy with its 95% bootstrap interval as error bars
(`evals.stats`, the report's own figures) against the measure, one line per strategy through
its budgets (each point labelled with its budget), and the Pareto front of the panel marked.
The measures are `MEASURES`: mean generated tokens, and mean cost (eFLOPs, `reasoner.cost`)
where every record of the suite was priced, a second column of panels. Written as PNG or SVG by
matplotlib (Agg, no display), or as one self-contained HTML page: the report's table and the
plot inline as SVG, nothing fetched when it is viewed.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from evals.report import HEADERS, Report, Row, row_cells
from evals.stats import pareto_front
from reasoner.errors import InputError
from reasoner.output_files import HTML_START, PNG_SOFTWARE, mark_svg

PLOT_FORMATS = ("png", "svg", "html")
PANEL_INCHES = (6.4, 4.4)
PNG_DPI = 110


@dataclass(frozen=True)
class Measure:
    """An x axis for accuracy: the `Row` field holding it and the axis label."""

    field: str
    label: str


MEASURES: tuple[Measure, ...] = (
    Measure("mean_tokens", "mean generated tokens per problem"),
    Measure("mean_cost", "mean cost per problem (eFLOPs)"),
)
"""The panels of each suite, left to right; a measure some row lacks (None) gets no panel for its suite."""


def plot_format(path: str) -> str:
    """The plot format a file name asks for (its extension), or an `InputError` naming the ones there are."""
    extension = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    if extension not in PLOT_FORMATS:
        raise InputError(f"--plot {path}: the name must end in .png, .svg or .html (it picks the format)")
    return extension


def plot_report(report: Report) -> Figure:
    """The figure: a row of panels per suite, one panel per measure its rows all carry."""
    measures = {
        suite: [
            measure
            for measure in MEASURES
            if all(_value(row, measure) is not None for row in report.rows if row.suite == suite)
        ]
        for suite in report.suites
    }
    colours = {
        strategy: f"C{index % 10}" for index, strategy in enumerate(dict.fromkeys(r.strategy for r in report.rows))
    }
    columns = max(len(shown) for shown in measures.values())
    figure = Figure(figsize=(PANEL_INCHES[0] * columns, PANEL_INCHES[1] * len(measures)), layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.subplots(len(measures), columns, squeeze=False)
    for row_index, (suite, shown) in enumerate(measures.items()):
        rows = [row for row in report.rows if row.suite == suite]
        for column_index, axes in enumerate(grid[row_index]):
            if column_index < len(shown):
                _draw_panel(axes, rows, suite, shown[column_index], colours, f"{row_index}-{column_index}")
            else:
                axes.set_visible(False)
    return figure


def _value(row: Row, measure: Measure) -> float | None:
    value = getattr(row, measure.field)
    return None if value is None else float(value)


def _draw_panel(
    axes: Axes, rows: Sequence[Row], suite: str, measure: Measure, colours: dict[str, str], panel: str
) -> None:
    """One panel; its artists' ids (`series-PANEL-N`, `pareto-PANEL`) name them in the SVG."""
    for index, strategy in enumerate(dict.fromkeys(row.strategy for row in rows)):
        series = sorted((row for row in rows if row.strategy == strategy), key=lambda row: row.budget)
        xs = [_value(row, measure) or 0.0 for row in series]
        ys = [row.accuracy for row in series]
        errors = [[row.accuracy - row.ci_low for row in series], [row.ci_high - row.accuracy for row in series]]
        bars = axes.errorbar(
            xs, ys, yerr=errors, marker="o", capsize=3, color=colours[strategy], label=_plain(strategy)
        )
        bars.lines[0].set_gid(f"series-{panel}-{index}")
        for x, y, row in zip(xs, ys, series, strict=True):
            axes.annotate(str(row.budget), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7, color="0.35")
    points = [(_value(row, measure) or 0.0, row.accuracy) for row in rows]
    front = sorted(points[index] for index in pareto_front(points))
    axes.plot(
        [x for x, _ in front],
        [y for _, y in front],
        linestyle="--",
        color="black",
        marker="o",
        markersize=12,
        markerfacecolor="none",
        drawstyle="steps-post",
        label="Pareto front",
        gid=f"pareto-{panel}",
    )
    axes.set_title(_plain(suite))
    axes.set_xlabel(measure.label)
    axes.set_ylabel("accuracy (95% CI)")
    axes.set_ylim(-0.02, 1.02)
    axes.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="best")


def _plain(text: str) -> str:
    """Text matplotlib shows as written: a `$` would start math mode (and fail on a stray one)."""
    return text.replace("$", r"\$")


def render_plot(report: Report, plot_format: str) -> bytes:
    """The plot as PNG or SVG bytes (SVG text kept as text), or the HTML page, each carrying our mark."""
    if plot_format == "html":
        return render_html(report).encode()
    figure = plot_report(report)
    buffer = io.BytesIO()
    if plot_format == "png":
        figure.savefig(buffer, format="png", dpi=PNG_DPI, metadata=PNG_SOFTWARE)
        return buffer.getvalue()
    return mark_svg(_svg_text(figure)).encode()


def _svg_text(figure: Figure) -> str:
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "reasoner"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def render_html(report: Report) -> str:
    """One page: per suite the report's table, then the plot as inline SVG; no script, nothing fetched."""
    svg = _svg_text(plot_report(report))
    inline = svg[svg.index("<svg") :]
    sections = []
    for suite in report.suites:
        head = "".join(f"<th>{html.escape(header)}</th>" for header in HEADERS)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row_cells(row)) + "</tr>"
            for row in report.rows
            if row.suite == suite
        )
        sections.append(
            f"<h2>{html.escape(suite)}</h2>\n<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )
    return (
        f'{HTML_START}<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>reasoner report</title>\n<style>\n"
        "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0 1.5em}"
        "th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}"
        "td:first-child,th:first-child{text-align:left}svg{max-width:100%;height:auto}\n"
        "</style>\n</head>\n<body>\n<h1>reasoner report</h1>\n"
        "<p>acc = accuracy with its 95% bootstrap interval; tok = mean generated tokens; "
        "front = on the Pareto front of accuracy vs tokens; cost = mean eFLOPs, and its front.</p>\n"
        + "\n".join(sections)
        + f"\n<figure>\n{inline}</figure>\n</body>\n</html>\n"
    )
