"""Reports and alerts: the Flask app over the store, standalone HTML reports, signed webhooks.

Imports point one way: ``reports`` imports ``auditor`` and ``pipelines``; nothing imports it
but the CLI. Nothing runs at import: ``create_app`` registers the blueprints.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def create_app(config: dict | None = None):
    """The report server over one store. ``config`` overrides the defaults below.

    ``TULIP_ROOT`` (store directory), ``TULIP_BACKEND`` (embedded or pachyderm),
    ``TULIP_TOKEN`` (require it as a bearer token or cookie on every route),
    ``TULIP_CACHE_DIR`` (thumbnails and projections; default ``<root>/cache/reports``),
    ``TULIP_ALERTS_CONFIG`` (the webhook config the alerts page shows).
    """
    from flask import Flask

    from . import request_store, security
    from .cache import caches
    from .templating import install_filters
    from .views import alerts, audits, commits, files, lineage, models, overview, review, thumbs

    app = Flask(__name__)
    root = Path(os.environ.get("TULIP_ROOT") or ".tulip")
    app.config.from_mapping(
        TULIP_ROOT=str(root.absolute()),
        TULIP_BACKEND=None,
        TULIP_TOKEN=None,
        TULIP_CACHE_DIR=None,
        TULIP_ALERTS_CONFIG=None,
        SECRET_KEY=secrets.token_bytes(32),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_NAME="tulip_session",
        MAX_CONTENT_LENGTH=64 * 1024,
        JSON_SORT_KEYS=False,
    )
    if config:
        app.config.update(config)
    if not app.config["TULIP_CACHE_DIR"]:
        app.config["TULIP_CACHE_DIR"] = str(Path(app.config["TULIP_ROOT"]) / "cache" / "reports")

    caches(app)  # made here, before any request thread can race to make it
    request_store.init_app(app)
    security.init_app(app)
    install_filters(app.jinja_env)
    for module in (overview, audits, review, lineage, models, commits, thumbs, files, alerts):
        app.register_blueprint(module.bp)
    return app
