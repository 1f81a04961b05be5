"""Where alerts go: the webhook endpoints of a store, read from TOML or JSON.

The file is ``$TULIP_ALERTS`` if set, else ``<store root>/alerts.toml`` (``--alerts-config``
overrides both)::

    base_url = "http://127.0.0.1:8080"     # where `tulip serve` runs: alerts link to reports
    source = "tulip://build-box/flowers"   # CloudEvents source (default tulip://<host><root>)

    [delivery]                             # all optional; these are the defaults
    timeout_seconds = 15
    backoff_base_seconds = 5
    backoff_max_seconds = 3600
    give_up_after_seconds = 86400          # retries stop about a day after the event
    min_attempts = 8                       # ...but a re-armed delivery gets at least this many

    [[endpoint]]
    name = "oncall"
    url = "https://hooks.example.com/tulip"
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"   # or secret_env = "ONCALL_SECRET"
    events = ["audit.*", "gate.blocked", "job.failed"]  # globs; default every event
    format = "cloudevents"                 # or "slack" (an incoming-webhook body)

A JSON file has the same shape (``endpoint`` may also be spelled ``endpoints``).
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from pipelines.errors import TulipError

CONFIG_ENV = "TULIP_ALERTS"
CONFIG_NAME = "alerts.toml"
FORMATS = ("cloudevents", "slack")
SECRET_PREFIX = "whsec_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


class AlertConfigError(TulipError):
    """The alerts config file is unreadable or names something impossible."""


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str
    secret: str | None = None
    events: tuple[str, ...] = ("*",)
    format: str = "cloudevents"

    def wants(self, event_type: str) -> bool:
        return any(fnmatch.fnmatchcase(event_type, pattern) for pattern in self.events)

    @property
    def key(self) -> bytes | None:
        """The Standard Webhooks signing key: the base64 part of ``whsec_<base64>``."""
        return None if self.secret is None else secret_key(self.secret)


@dataclass(frozen=True)
class Delivery:
    timeout_seconds: float = 15.0
    backoff_base_seconds: float = 5.0
    backoff_max_seconds: float = 3600.0
    give_up_after_seconds: float = 86400.0
    min_attempts: int = 8
    min_delay_seconds: float = 1.0
    max_retry_after_seconds: float = 86400.0
    poll_seconds: float = 1.0
    idle_exit_seconds: float = 30.0


@dataclass(frozen=True)
class AlertConfig:
    endpoints: tuple[Endpoint, ...] = ()
    base_url: str | None = None
    source: str | None = None
    delivery: Delivery = field(default_factory=Delivery)
    path: Path | None = None

    def added(self, now: float) -> float | None:
        """When endpoints first seen now were added: the config file's last write (an event
        between the edit and the first delivery run is theirs). None for a config built in
        code, which has no such moment: its endpoints get the last day's events."""
        if self.path is None:
            return None
        try:
            return min(now, self.path.stat().st_mtime)
        except OSError:
            return now

    def endpoint(self, name: str) -> Endpoint | None:
        return next((e for e in self.endpoints if e.name == name), None)


def secret_key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise AlertConfigError(
            "a webhook secret is 'whsec_' followed by base64 (Standard Webhooks); make one with "
            "`python -c \"import base64,os;print('whsec_'+base64.b64encode(os.urandom(24)).decode())\"`"
        )
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :] + "==", validate=False)
    except (binascii.Error, ValueError):
        raise AlertConfigError("the webhook secret after 'whsec_' is not valid base64") from None
    if len(key) < 16:
        raise AlertConfigError(
            f"the webhook secret decodes to {len(key)} bytes; use at least 16 (24-64 is usual)"
        )
    return key


def config_path(root: Path, override: Path | str | None = None) -> Path:
    if override:
        return Path(override)
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else Path(root) / CONFIG_NAME


def _endpoint(raw: object, where: str) -> Endpoint:
    if not isinstance(raw, dict):
        raise AlertConfigError(f"{where}: an endpoint is a table with name, url, secret, events")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise AlertConfigError(
            f"{where}: endpoint name {name!r} must be letters, digits, '_', '-' or '.' (max 64)"
        )
    url = raw.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise AlertConfigError(f"{where}: endpoint {name}: url {url!r} must be an http(s) URL")
    secret = raw.get("secret")
    if secret is None and raw.get("secret_env"):
        secret = os.environ.get(str(raw["secret_env"]))
        if secret is None:
            raise AlertConfigError(
                f"{where}: endpoint {name}: secret_env {raw['secret_env']} is not set"
            )
    fmt = raw.get("format", "cloudevents")
    if fmt not in FORMATS:
        raise AlertConfigError(f"{where}: endpoint {name}: format {fmt!r}; use one of {FORMATS}")
    if secret is not None:
        if not isinstance(secret, str):
            raise AlertConfigError(f"{where}: endpoint {name}: secret must be a string")
        secret_key(secret)
    elif fmt == "cloudevents":
        raise AlertConfigError(
            f"{where}: endpoint {name} has no secret; receivers cannot verify unsigned events "
            '(only format = "slack" may omit it)'
        )
    events = raw.get("events", ["*"])
    if isinstance(events, str):
        events = [events]
    if not isinstance(events, list) or not all(isinstance(e, str) and e for e in events):
        raise AlertConfigError(f"{where}: endpoint {name}: events must be a list of globs")
    return Endpoint(name, url, secret, tuple(events), fmt)


def parse_config(data: dict, *, where: str = "alerts config") -> AlertConfig:
    if not isinstance(data, dict):
        raise AlertConfigError(f"{where}: expected a table at the top level")
    raw_endpoints = data.get("endpoint", data.get("endpoints", []))
    if isinstance(raw_endpoints, dict):  # [endpoints.NAME] tables
        raw_endpoints = [{"name": k, **v} for k, v in raw_endpoints.items() if isinstance(v, dict)]
    endpoints = tuple(_endpoint(e, where) for e in raw_endpoints)
    names = [e.name for e in endpoints]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise AlertConfigError(f"{where}: endpoint names must be unique; repeated: {dupes}")
    raw_delivery = data.get("delivery") or {}
    known = Delivery.__dataclass_fields__
    unknown = sorted(set(raw_delivery) - set(known))
    if unknown:
        raise AlertConfigError(
            f"{where}: unknown [delivery] settings {unknown}; known: {sorted(known)}"
        )
    try:
        delivery = Delivery(**{k: type(getattr(Delivery(), k))(v) for k, v in raw_delivery.items()})
    except (TypeError, ValueError) as e:
        raise AlertConfigError(f"{where}: [delivery]: {e}") from None
    base_url = data.get("base_url")
    return AlertConfig(
        endpoints=endpoints,
        base_url=base_url.rstrip("/") if isinstance(base_url, str) and base_url else None,
        source=data.get("source") if isinstance(data.get("source"), str) else None,
        delivery=delivery,
    )


def load_config(root: Path, override: Path | str | None = None) -> AlertConfig:
    """The store's alerts config; no file means no endpoints (events still queue in the outbox)."""
    path = config_path(root, override)
    if not path.is_file():
        if override:
            raise AlertConfigError(f"no alerts config at {path}")
        return AlertConfig(path=path)
    text = path.read_bytes()
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise AlertConfigError(
            f"{path} is not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {e}"
        ) from None
    cfg = parse_config(data, where=str(path))
    return AlertConfig(cfg.endpoints, cfg.base_url, cfg.source, cfg.delivery, path)


_SPAN = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, *, now: float) -> float:
    """``--replay SINCE``: a span back from now (``90m``, ``2h``, ``1d``) or an ISO-8601 time
    (``2026-12-01T08:00:00Z``) as POSIX seconds; ``ValueError`` names what is accepted."""
    import datetime as _dt
    import re

    value = text.strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw])", value)
    if m:
        return now - float(m.group(1)) * _SPAN[m.group(2)]
    try:
        when = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a span (90m, 2h, 1d, 1w) nor an ISO-8601 time "
            "(2026-12-01T08:00:00Z)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    return when.timestamp()
