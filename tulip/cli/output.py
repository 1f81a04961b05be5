"""Rendering results: aligned tables for people, JSON for machines. Data goes to stdout."""

from __future__ import annotations

import datetime as _dt
import json
import shutil
import sys
import textwrap
import time
from collections.abc import Iterable, Sequence
from typing import Any

import click

OUTPUT_CHOICES = click.Choice(["table", "json"])


def output_option(*extra: str):
    return click.option(
        "-o",
        "--output",
        "output",
        type=click.Choice(["table", "json", *extra]),
        default="table",
        show_default=True,
        help="table for people, json for machines" + (f", or {', '.join(extra)}" if extra else ""),
    )


def raw_option():
    return click.option(
        "--raw",
        is_flag=True,
        help="pachctl's --raw shape instead: protojson messages, one per line (see docs/pachyderm.md)",
    )


def emit_raw(messages: Iterable[dict]) -> None:
    """pachctl's shape (``pipelines.protojson``): one JSON object per line on stdout."""
    from pipelines.protojson import stream

    for line in stream(messages):
        click.echo(line)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


MIN_WRAP_WIDTH = 40


def table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], *, wrap: int | None = None
) -> None:
    """Aligned columns. Column ``wrap`` (an index) is wrapped onto continuation lines to fit
    the terminal (at least ``MIN_WRAP_WIDTH`` wide), never cut: the whole text is shown."""
    rows = [["" if c is None else str(c) for c in r] for r in rows]
    widths = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))
    if wrap is not None:
        others = sum(w for i, w in enumerate(widths) if i != wrap) + 2 * (len(widths) - 1)
        room = max(MIN_WRAP_WIDTH, shutil.get_terminal_size().columns - others)
        widths[wrap] = max(len(headers[wrap]), min(widths[wrap], room))
        rows = [line for r in rows for line in _wrapped(r, wrap, widths[wrap])]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    click.echo(fmt.format(*headers).rstrip())
    for r in rows:
        click.echo(fmt.format(*r).rstrip())


def _wrapped(row: list[str], column: int, width: int) -> list[list[str]]:
    pieces = textwrap.wrap(row[column], width, break_on_hyphens=False) or [""]
    first = [*row[:column], pieces[0], *row[column + 1 :]]
    blank = ["" for _ in row]
    return [first] + [[*blank[:column], p, *blank[column + 1 :]] for p in pieces[1:]]


def ago(ts: float | None) -> str:
    if ts is None:
        return "-"
    delta = time.time() - ts
    for unit, secs in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if delta >= secs:
            n = int(delta // secs)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def duration(start: float | None, end: float | None) -> str:
    if start is None:
        return "-"
    secs = (end or time.time()) - start
    if secs < 60:
        return f"{secs:.1f}s"
    return f"{int(secs // 60)}m{int(secs % 60):02d}s"


def size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.2f}{unit}"
        value /= 1024
    return str(n)


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return _dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def info(message: str, *, quiet: bool = False) -> None:
    """A narration line for people: stderr, so stdout stays data."""
    if not quiet:
        click.echo(message, err=True)


def progress_bar(total: int, desc: str, *, quiet: bool, unit: str = "B"):
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=unit == "B",
        unit_divisor=1024,
        disable=quiet or None,
        file=sys.stderr,
        leave=False,
    )
