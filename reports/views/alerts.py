"""Alerts: the outbox's events with their delivery state per endpoint, and the one
state-changing route of the alerts, ``POST /alerts/<id>/retry`` (CSRF-checked in
``reports.security``; a GET there is a 405, never a change)."""

from __future__ import annotations

from pathlib import Path

from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from pipelines.errors import TulipError

from ..alerts.config import load_config
from ..alerts.delivery import spawn_deliverer
from ..alerts.events import EventNotFound, list_endpoints, list_events, retry
from ..request_store import get_backend

bp = Blueprint("alerts", __name__)


def _config():
    return load_config(
        Path(current_app.config["TULIP_ROOT"]), current_app.config["TULIP_ALERTS_CONFIG"]
    )


def alerts_data() -> dict:
    backend = get_backend()
    error = None
    try:
        config = _config()
        endpoints = list_endpoints(backend, config)
        config_path = str(config.path) if config.path else None
    except TulipError as e:
        config, endpoints, config_path, error = None, [], None, str(e)
    try:
        events = list_events(backend, limit=100)
    except TulipError as e:
        events, error = [], str(e)
    return {"events": events, "endpoints": endpoints, "config_path": config_path, "error": error}


@bp.get("/alerts")
def page():
    return render_template(
        "alerts.html",
        **alerts_data(),
        done=request.args.get("done"),
        rearmed=request.args.get("rearmed", type=int),
    )


@bp.get("/api/alerts")
def api():
    return jsonify(alerts_data())


@bp.post("/alerts/<event_id>/retry")
def retry_event(event_id: str):
    backend = get_backend()
    config = _config()
    endpoint = request.form.get("endpoint") or None
    try:
        changes = retry(backend, event_id, config, endpoint=endpoint)
    except EventNotFound as e:
        abort(404, str(e))
    rearmed = [c["endpoint"] for c in changes if c["now"] == "pending"]
    if rearmed:
        spawn_deliverer(
            Path(current_app.config["TULIP_ROOT"]),
            config_override=current_app.config["TULIP_ALERTS_CONFIG"],
        )
    if request.accept_mimetypes.best == "application/json":
        return jsonify({"event": event_id, "changes": changes})
    return redirect(url_for("alerts.page", done=event_id, rearmed=len(rearmed)), code=303)
