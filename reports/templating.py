"""The Jinja filters both renderers share, and the autoescaping environment of the standalone one.

Autoescaping is on for every template, in the server (Flask turns it on for ``.html``) and in
the standalone renderer (``select_autoescape`` with a default of True). No template marks a
user-controlled string ``|safe``; JSON for scripts goes through ``|tojson``, which escapes
``<``, ``>``, ``&`` and ``'`` so that ``</script>`` in a label cannot close the block.
"""

from __future__ import annotations

import datetime as _dt
import time

from jinja2 import Environment, PackageLoader, select_autoescape


def ago(ts: float | None) -> str:
    if ts is None:
        return "-"
    delta = max(0.0, time.time() - float(ts))
    for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= seconds:
            return f"{int(delta // seconds)}{unit} ago"
    return f"{int(delta)}s ago"


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return _dt.datetime.fromtimestamp(float(ts), _dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def pct(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{100 * float(value):.{digits}f}%"


def num(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return (
            f"{value:.{digits}g}"
            if abs(value) < 1e-3 and value
            else f"{value:,.{digits}f}".rstrip("0").rstrip(".")
        )
    return str(value)


def short(commit_id: str | None) -> str:
    return (commit_id or "")[:10]


def filesize(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


FILTERS = {"ago": ago, "when": when, "pct": pct, "num": num, "short": short, "filesize": filesize}


def install_filters(env: Environment) -> None:
    env.filters.update(FILTERS)


def standalone_environment() -> Environment:
    env = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    install_filters(env)
    return env
