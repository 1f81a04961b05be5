"""Running the report app: waitress (a production WSGI server, pure Python) when installed, else
Werkzeug's threaded server. Both bind 127.0.0.1 unless told otherwise.

``bench/report_latency.py`` measures both under wrk; see its output for why waitress is the
default.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
from collections.abc import Callable

log = logging.getLogger("tulip.serve")

SERVERS = ("auto", "waitress", "werkzeug")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    return secrets.token_urlsafe(24)


def pick_server(name: str = "auto") -> str:
    if name not in SERVERS:
        raise ValueError(f"unknown server {name!r}; choose one of {SERVERS}")
    if name != "auto":
        return name
    try:
        import waitress  # noqa: F401
    except ImportError:
        return "werkzeug"
    return "waitress"


def run(
    app,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    threads: int = 8,
    server: str = "auto",
    ready: Callable[[str, int], None] | None = None,
) -> None:
    """Serve until interrupted. ``ready(host, port)`` is called once the socket listens
    (port 0 picks a free port, and ``ready`` gets the real one)."""
    kind = pick_server(server)
    if kind == "waitress":
        from waitress.server import create_server

        srv = create_server(app, host=host, port=port, threads=threads, ident="tulip")
        real_port = srv.effective_port
        if ready:
            ready(host, real_port)
        try:
            srv.run()
        finally:
            srv.close()
        return
    from werkzeug.serving import make_server

    srv = make_server(host, port, app, threaded=True)
    if ready:
        ready(host, srv.server_port)
    try:
        srv.serve_forever()
    finally:
        srv.server_close()
