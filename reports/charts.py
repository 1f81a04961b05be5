"""Geometry for the inline SVG charts: the class-by-class overlap heatmap and the 2-D embedding map.

Pure functions from numbers to shapes; the templates (``charts.html``) turn the shapes into
escaped SVG markup. No chart library and no network: the same markup works in the served pages
and in the standalone ``report.html``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

# Tableau 10: distinguishable, colour-blind friendlier than the rainbow.
PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)  # fmt: skip


def colour(i: int) -> str:
    if i < len(PALETTE):
        return PALETTE[i]
    hue = (i * 137.508) % 360  # golden angle: far-apart hues for any number of classes
    return f"hsl({hue:.0f},55%,50%)"


def heat_colour(value: float, vmax: float) -> str:
    """White (0) to deep red (vmax)."""
    t = 0.0 if vmax <= 0 or value is None or math.isnan(value) else max(0.0, min(1.0, value / vmax))
    r = 255 - int(t * (255 - 178))
    g = 255 - int(t * (255 - 24))
    b = 255 - int(t * (255 - 43))
    return f"#{r:02x}{g:02x}{b:02x}"


@dataclass(frozen=True)
class Cell:
    x: float
    y: float
    fill: str
    value: float | None
    row: str
    column: str
    dark: bool  # text on it should be white


@dataclass(frozen=True)
class Heatmap:
    labels: list[str]  # rows
    cells: list[Cell]
    cell: int
    margin: int  # left, for the row labels
    width: int
    height: int
    vmax: float
    caption: str = ""
    columns: list[str] | None = None  # None: the same as the rows (a square matrix)
    top: int | None = None  # top margin, for the column labels

    @property
    def label_positions(self) -> list[tuple[str, float]]:
        """Row labels and their y (also the column positions of a square matrix)."""
        return [
            (label, self.top_margin + (i + 0.5) * self.cell) for i, label in enumerate(self.labels)
        ]

    @property
    def top_margin(self) -> int:
        return self.margin if self.top is None else self.top

    @property
    def column_positions(self) -> list[tuple[str, float]]:
        cols = self.labels if self.columns is None else self.columns
        return [(label, self.margin + (j + 0.5) * self.cell) for j, label in enumerate(cols)]


def heatmap(
    labels: list[str],
    matrix: list[list[float | None]],
    *,
    columns: list[str] | None = None,
    cell: int = 30,
    caption: str = "",
) -> Heatmap:
    """Cells for a matrix: row i, column j = the overlap of ``labels[i]`` and ``columns[j]``
    (``columns`` defaults to ``labels``: a square class-by-class matrix). A cell whose row and
    column name the same class is drawn grey."""
    cols = labels if columns is None else columns
    n, m = len(labels), len(cols)
    if len(matrix) != n or any(len(row) != m for row in matrix):
        raise ValueError(
            f"overlap matrix must be {n}x{m} for {n} row and {m} column labels, got "
            f"{len(matrix)}x{len(matrix[0]) if matrix else 0}"
        )
    values = [
        float(v)
        for i, row in enumerate(matrix)
        for j, v in enumerate(row)
        if labels[i] != cols[j] and v is not None
    ]
    # Scores in [0, 1] keep an absolute scale, so a harmless 0.1 never looks alarming.
    vmax = max(1.0, max(values, default=1.0))
    margin = min(180, 14 + 7 * max((len(x) for x in labels), default=4))
    top = min(180, 14 + 7 * max((len(x) for x in cols), default=4))
    cells = []
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            value = None if v is None else float(v)
            same = labels[i] == cols[j]
            cells.append(
                Cell(
                    x=margin + j * cell,
                    y=top + i * cell,
                    fill="#eeeeee" if same or value is None else heat_colour(value, vmax),
                    value=value,
                    row=labels[i],
                    column=cols[j],
                    dark=not same and value is not None and value / vmax > 0.6,
                )
            )
    return Heatmap(
        labels,
        cells,
        cell,
        margin,
        margin + m * cell + 4,
        top + n * cell + 4,
        vmax,
        caption,
        None if columns is None else list(columns),
        top,
    )


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    colour: str
    label: str
    path: str


@dataclass(frozen=True)
class Series:
    """All points of one label as a single SVG path of round dots: compact for big maps."""

    label: str
    colour: str
    d: str


@dataclass(frozen=True)
class Scatter:
    width: int
    height: int
    points: list[Point]  # one <circle> with a tooltip each, for small maps
    legend: list[tuple[str, str, int]]  # label, colour, count
    method: str
    total: int
    notes: list[str] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)  # instead of points, for big maps


def scatter(
    xs: list[float],
    ys: list[float],
    labels: list[str],
    paths: list[str] | None = None,
    *,
    width: int = 640,
    height: int = 440,
    pad: int = 12,
    max_points: int = 6000,
    tooltips_up_to: int = 800,
    method: str = "pca",
    highlight: set[str] | None = None,
) -> Scatter:
    """Points scaled into the box, coloured by label (highlighted labels first in the legend)."""
    n = len(xs)
    if len(ys) != n or len(labels) != n or (paths is not None and len(paths) != n):
        raise ValueError(
            f"projection arrays differ in length: x {n}, y {len(ys)}, labels {len(labels)}"
            + (f", paths {len(paths)}" if paths is not None else "")
        )
    counts = Counter(labels)
    order = sorted(counts, key=lambda lab: (lab not in (highlight or set()), lab))
    colours = {lab: colour(i) for i, lab in enumerate(order)}
    notes = []
    step = 1
    if n > max_points:
        step = math.ceil(n / max_points)
        notes.append(f"showing every {step}th of {n} points")
    finite = [(x, y) for x, y in zip(xs, ys, strict=True) if math.isfinite(x) and math.isfinite(y)]
    if not finite:
        return Scatter(
            width, height, [], [(lab, colours[lab], counts[lab]) for lab in order], method, n, notes
        )
    x0, x1 = min(p[0] for p in finite), max(p[0] for p in finite)
    y0, y1 = min(p[1] for p in finite), max(p[1] for p in finite)
    sx = (width - 2 * pad) / ((x1 - x0) or 1.0)
    sy = (height - 2 * pad) / ((y1 - y0) or 1.0)
    points = []
    for i in range(0, n, step):
        x, y = xs[i], ys[i]
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        points.append(
            Point(
                round(pad + (x - x0) * sx, 1),
                round(height - pad - (y - y0) * sy, 1),
                colours[labels[i]],
                labels[i],
                paths[i] if paths is not None else "",
            )
        )
    legend = [(lab, colours[lab], counts[lab]) for lab in order]
    if len(points) <= tooltips_up_to:
        return Scatter(width, height, points, legend, method, n, notes)
    # Thousands of <circle>s with tooltips weigh ~130 bytes each; a path of "M x y h0" dots
    # drawn with round caps is ~14 bytes a point and looks the same.
    parts: dict[str, list[str]] = {lab: [] for lab in order}
    for p in points:
        parts[p.label].append(f"M{p.x:g} {p.y:g}h0")
    series = [Series(lab, colours[lab], "".join(parts[lab])) for lab in order if parts[lab]]
    notes.append(
        f"{len(points)} points: hover tooltips are shown for maps of up to {tooltips_up_to}"
    )
    return Scatter(width, height, [], legend, method, n, notes, series)
