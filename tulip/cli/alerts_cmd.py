"""`tulip alerts`: the outbox's events and their webhook deliveries; retry, deliver, test."""

from __future__ import annotations

import click

from . import output as out
from .base import Settings, cli, pass_settings


@cli.group()
def alerts() -> None:
    """Alert webhooks: list events and deliveries, retry one, run delivery, send a test.

    Endpoints are configured in $TULIP_ALERTS, else ROOT/alerts.toml (see reports/alerts/config.py).
    Delivery is at-least-once: receivers deduplicate by the webhook-id header.
    """


def _config_option(f):
    return click.option(
        "--alerts-config",
        default=None,
        type=click.Path(dir_okay=False),
        help="alerts config (default $TULIP_ALERTS, else ROOT/alerts.toml)",
    )(f)


def _config(s: Settings, override: str | None):
    from reports.alerts.config import load_config

    return load_config(s.store_root, override)


@alerts.command("list")
@click.option("-n", "--limit", default=50, show_default=True, help="newest N events")
@click.option("--type", "event_type", default=None, help="only event types matching this glob")
@out.output_option()
@_config_option
@pass_settings
def list_alerts(
    s: Settings, limit: int, event_type: str | None, output: str, alerts_config: str | None
) -> None:
    """Events, newest first, with their delivery state per endpoint."""
    from reports.alerts.events import list_endpoints, list_events

    backend = s.backend()
    events = list_events(backend, limit=limit, event_type=event_type)
    if output == "json":
        return out.emit_json(events)
    config = _config(s, alerts_config)
    endpoints = list_endpoints(backend, config)
    if endpoints:
        out.table(
            ["ENDPOINT", "URL", "FORMAT", "EVENTS", "STATE"],
            [
                (
                    e["name"],
                    e["url"],
                    e["format"],
                    " ".join(e["events"]),
                    f"disabled: {e['reason']}" if e["disabled"] else "active",
                )
                for e in endpoints
            ],
        )
        click.echo()
    else:
        out.info(
            f"no endpoints configured in {config.path}; events wait in the outbox", quiet=s.quiet
        )
    rows = []
    for ev in events:
        deliveries = ev["deliveries"] or [None]
        for d in deliveries:
            rows.append(
                (
                    ev["id"][:12],
                    ev["time"],
                    ev["type"],
                    ev["subject"],
                    d["endpoint"] if d else "-",
                    (d["state"] + (" (endpoint disabled)" if d["endpoint_disabled"] else ""))
                    if d
                    else "not fanned out",
                    d["attempts"] if d else "",
                    (d["last_status"] or d["last_error"] or "") if d else "",
                    (d["next_attempt"] or "")
                    if d and d["state"] in ("pending", "retrying")
                    else "",
                )
            )
    out.table(
        ["EVENT", "TIME", "TYPE", "SUBJECT", "ENDPOINT", "STATE", "TRIES", "LAST", "NEXT"], rows
    )


@alerts.command("retry")
@click.argument("event_id")
@click.option("--endpoint", default=None, help="only this endpoint")
@click.option("--no-deliver", is_flag=True, help="re-arm only; do not start a deliverer")
@_config_option
@pass_settings
def retry_alert(
    s: Settings, event_id: str, endpoint: str | None, no_deliver: bool, alerts_config: str | None
) -> None:
    """Re-arm an event's failed, disabled or pending deliveries (acknowledged ones stay sent)."""
    from reports.alerts.delivery import spawn_deliverer
    from reports.alerts.events import retry

    changes = retry(s.backend(), event_id, _config(s, alerts_config), endpoint=endpoint)
    if not changes:
        out.info("no configured endpoint takes this event; nothing to retry", quiet=s.quiet)
    for c in changes:
        if c["was"] == "delivered":
            click.echo(f"{c['endpoint']}: already delivered; not sent again")
        else:
            click.echo(f"{c['endpoint']}: {c['was'] or 'new'} -> {c['now']}")
    if not no_deliver and any(c["now"] == "pending" for c in changes):
        started = spawn_deliverer(s.store_root.absolute(), config_override=alerts_config)
        out.info(
            "started a deliverer" if started else "a deliverer is running; it will send it",
            quiet=s.quiet,
        )


def _since(value: str | None) -> float | None:
    import time

    from reports.alerts.config import parse_since

    if value is None:
        return None
    try:
        return parse_since(value, now=time.time())
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--replay") from None


_REPLAY_HELP = (
    "also send the events since SINCE (2h, 1d, or an ISO time) to every endpoint that has not "
    "had them; without it a new endpoint starts from when it was added"
)


@alerts.command("deliver")
@click.option("--once", is_flag=True, help="send what is due now, then exit")
@click.option("--forever", is_flag=True, help="keep running when idle")
@click.option("--replay", "replay", metavar="SINCE", default=None, help=_REPLAY_HELP)
@_config_option
@pass_settings
def deliver(
    s: Settings, once: bool, forever: bool, replay: str | None, alerts_config: str | None
) -> None:
    """Run delivery in the foreground (one deliverer per store)."""
    from reports.alerts.delivery import serve

    since = _since(replay)
    config = _config(s, alerts_config)
    s.backend()  # a clear error if there is no store
    if not config.endpoints:
        out.info(f"no endpoints configured in {config.path}; nothing to deliver to", quiet=s.quiet)
        return
    idle = None if forever else config.delivery.idle_exit_seconds
    stats = serve(s.store_root.absolute(), config, once=once, idle_exit=idle, replay_since=since)
    if stats is not None:
        click.echo(
            f"attempted {stats.attempted}: {stats.delivered} delivered, {stats.retrying} to retry, "
            f"{stats.failed} given up, {stats.disabled} endpoint disabled"
        )


@alerts.command("test")
@click.option("--endpoint", default=None, help="only this endpoint (default every endpoint)")
@_config_option
@pass_settings
def test_alert(s: Settings, endpoint: str | None, alerts_config: str | None) -> None:
    """Send an alert.test event now and show each endpoint's answer."""
    from pipelines.errors import TulipError
    from reports.alerts.config import AlertConfig
    from reports.alerts.delivery import Deliverer, deliverer_lock
    from reports.alerts.events import emit_test_event, retry

    config = _config(s, alerts_config)
    if not config.endpoints:
        raise TulipError(f"no endpoints configured in {config.path}; add an [[endpoint]] first")
    backend = s.backend()
    eid = emit_test_event(backend)
    chosen = [e for e in config.endpoints if endpoint in (None, e.name)]
    if not chosen:
        raise TulipError(f"no endpoint {endpoint!r} in {config.path}")
    only = AlertConfig(tuple(chosen), config.base_url, config.source, config.delivery, config.path)
    for e in chosen:  # a delivery for each chosen endpoint, whatever its event globs
        retry(backend, eid, only, endpoint=e.name)
    with deliverer_lock(s.store_root.absolute()) as got:
        if not got:
            raise TulipError("a deliverer is running for this store; it will send the test event")
        stats = Deliverer(backend, only).run_once(only={eid})
    click.echo(f"sent alert.test event {eid} (only this event; nothing else was delivered)")
    for d in stats.details:
        click.echo(f"{d['endpoint']}: {d['state']} ({d['status'] or d['error']})")


@alerts.command("follow")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=__import__("pathlib").Path),
    default=None,
    help="the local store that keeps the events, the cursor and the deliveries "
    "(default: --root / $TULIP_ROOT / ./.tulip, created if absent)",
)
@click.option(
    "--interval", type=float, default=30.0, show_default=True, help="seconds between polls"
)
@click.option("--once", is_flag=True, help="poll once, deliver what is due, then exit")
@click.option(
    "--replay",
    metavar="SINCE",
    default=None,
    help="on the first run, announce the cluster's jobs since SINCE (2h, 1d, an ISO time) "
    "instead of starting from now",
)
@_config_option
@pass_settings
def follow(
    s: Settings,
    home,
    interval: float,
    once: bool,
    replay: str | None,
    alerts_config: str | None,
) -> None:
    """Alerts for a Pachyderm cluster: follow its Audit and Convert jobs and deliver.

    Use with --backend pachyderm. Each finished job's verdict (audit.failed, audit.warned,
    audit.recovered) or gate refusal (gate.blocked) becomes one event in the home store's
    outbox, exactly once across restarts, and is delivered to the endpoints of the home's
    alerts config as `tulip alerts deliver` does. One follower per home.
    """
    import time

    from pipelines.embedded.store import EmbeddedStore
    from reports.alerts.config import load_config
    from reports.alerts.delivery import Deliverer, DelivererRunning, deliverer_lock
    from reports.alerts.follower import Follower

    since = _since(replay)
    cluster = s.backend()
    home_root = (home or s.store_root).absolute()
    config = load_config(home_root, alerts_config)
    if not config.endpoints:
        out.info(f"no endpoints in {config.path}: events wait in the outbox", quiet=s.quiet)
    cluster_id = getattr(cluster, "address", None) or cluster.name
    with deliverer_lock(home_root) as got:
        if not got:
            raise DelivererRunning(
                f"a deliverer or follower already runs for {home_root}; one per home"
            )
        store = EmbeddedStore(home_root)
        try:
            follower = Follower(cluster, store, cluster_id=str(cluster_id), replay_since=since)
            deliverer = Deliverer(store, config)
            while True:
                stats = follower.poll()
                sent = deliverer.run_once() if config.endpoints else None
                if stats.events or not s.quiet:
                    out.info(
                        f"{cluster_id}: {stats.jobs} job(s) announced, {len(stats.events)} "
                        f"event(s), {stats.waiting} still running"
                        + (f"; {sent.delivered} delivered" if sent is not None else ""),
                        quiet=s.quiet,
                    )
                if once:
                    return
                time.sleep(max(1.0, interval))
        finally:
            store.close()
