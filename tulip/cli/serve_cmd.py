"""`tulip serve`: the HTML reports and their JSON API over the store (read-only)."""

from __future__ import annotations

import os
import sys

import click

from pipelines.errors import TulipError

from . import output as out
from .base import Settings, cli, pass_settings


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to bind")
@click.option("--port", default=8080, show_default=True, type=int, help="port (0 picks a free one)")
@click.option(
    "--token",
    default=None,
    envvar="TULIP_SERVE_TOKEN",
    help="require this bearer token (or the cookie set by visiting /?token=...) on every route; "
    "default $TULIP_SERVE_TOKEN; made up for you when --host is not a loopback address",
)
@click.option("--alerts-config", default=None, help="alerts config the alerts page uses")
@click.option(
    "--server",
    type=click.Choice(["auto", "waitress", "werkzeug"]),
    default="auto",
    show_default=True,
    help="WSGI server (auto: waitress if installed)",
)
@click.option("--threads", default=8, show_default=True, type=int, help="request threads")
@pass_settings
def serve(
    s: Settings,
    host: str,
    port: int,
    token: str | None,
    alerts_config: str | None,
    server: str,
    threads: int,
) -> None:
    """Serve audit reports, lineage, models and commits at http://HOST:PORT/."""
    from reports import create_app
    from reports.server import is_loopback, new_token, run

    if s.backend_name in (None, "embedded") and not (s.store_root / "tulip.db").exists():
        raise TulipError(
            f"no Tulip store at {s.store_root.absolute()}; pass --root DIR or set $TULIP_ROOT"
        )
    if not token and not is_loopback(host):
        token = new_token()
        out.info(f"{host} is reachable from other machines, so a token is required", quiet=False)
    app = create_app(
        {
            "TULIP_ROOT": str(s.store_root.absolute()),
            "TULIP_BACKEND": s.backend_name,
            "TULIP_TOKEN": token or None,
            "TULIP_ALERTS_CONFIG": alerts_config,
        }
    )

    _resume_alerts(s, alerts_config)

    def ready(bound_host: str, bound_port: int) -> None:
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        url = f"http://{shown}:{bound_port}/"
        click.echo(
            f"Serving {s.store_root.absolute()} at {url}" + (f"?token={token}" if token else "")
        )
        sys.stdout.flush()

    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        run(app, host=host, port=port, threads=threads, server=server, ready=ready)
    except OSError as e:
        raise TulipError(
            f"cannot listen on {host}:{port}: {e.strerror or e}; try another --port"
        ) from None
    except KeyboardInterrupt:
        out.info("stopped", quiet=s.quiet)


def _resume_alerts(s: Settings, alerts_config: str | None) -> None:
    """Deliveries left pending by a restart go out again: start a deliverer if endpoints exist."""
    if os.environ.get("TULIP_NO_AUTORUN") or s.backend_name not in (None, "embedded"):
        return
    from reports.alerts.config import load_config
    from reports.alerts.delivery import spawn_deliverer

    try:
        config = load_config(s.store_root, alerts_config)
    except TulipError as e:
        out.info(f"alerts are not delivered: {e}", quiet=False)
        return
    if config.endpoints and spawn_deliverer(s.store_root.absolute(), config_override=alerts_config):
        out.info("started the alert deliverer", quiet=s.quiet)
