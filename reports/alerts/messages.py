"""What an alert says and how it is signed: CloudEvents 1.0 and Slack bodies, Standard Webhooks
signatures.

Signing (https://www.standardwebhooks.com): ``webhook-id`` is the event ID (stable across
retries, so receivers deduplicate on it), ``webhook-timestamp`` the attempt's Unix seconds,
``webhook-signature`` is ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` keyed with
the base64-decoded part of the ``whsec_`` secret. ``X-Hub-Signature-256`` is
``sha256=<hex HMAC-SHA256 of the body>`` keyed with the secret string exactly as configured
(as GitHub does), for receivers built for GitHub-style hooks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
from typing import Any
from urllib.parse import quote

from pipelines.embedded.outbox import Event
from pipelines.info import iso

from .config import AlertConfig, Endpoint, secret_key

TYPE_PREFIX = "dev.tulip."
TOLERANCE_SECONDS = 5 * 60


def default_source(root: str) -> str:
    return f"tulip://{quote(socket.gethostname(), safe='')}{quote(str(root))}"


def cloudevent(event: Event, *, source: str) -> dict:
    """A structured-mode CloudEvents 1.0 JSON envelope."""
    return {
        "specversion": "1.0",
        "id": event.id,
        "source": source,
        "type": TYPE_PREFIX + event.type,
        "subject": event.subject,
        "time": iso(event.time),
        "datacontenttype": "application/json",
        "data": event.data,
    }


def _slack_escape(text: Any) -> str:
    """Slack's three control characters; labels and messages are attacker-controlled."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_TITLES = {
    "audit.failed": ":red_circle: Audit failed",
    "audit.warned": ":large_orange_circle: Audit warned",
    "audit.recovered": ":large_green_circle: Audit recovered",
    "gate.blocked": ":no_entry: Gate blocked a model",
    "job.failed": ":x: Job failed",
}


def slack_message(event: Event) -> dict:
    """A Slack incoming-webhook body: fallback ``text`` plus Block Kit ``blocks``."""
    d = event.data
    title = _TITLES.get(event.type, f"Tulip: {event.type}")
    lines = [f"*{_slack_escape(event.subject)}*"]
    if d.get("verdict"):
        lines.append(f"verdict: *{_slack_escape(d['verdict'])}*")
    if d.get("reason"):
        lines.append(f"reason: {_slack_escape(d['reason'])}")
    for f in (d.get("top_findings") or d.get("findings") or [])[:5]:
        if isinstance(f, dict):
            lines.append(
                f"• `{_slack_escape(f.get('check', '?'))}` {_slack_escape(f.get('message', ''))}"
            )
    review = d.get("review") if isinstance(d.get("review"), dict) else None
    if review:
        fix = review.get("fix") if isinstance(review.get("fix"), dict) else {}
        lines.append(
            f"fixed by review `{_slack_escape(str(review.get('id'))[:12])}` of "
            f"`{_slack_escape(review.get('audit'))}` by {_slack_escape(review.get('by'))}: "
            f"`{_slack_escape(fix.get('repo'))}@{_slack_escape(str(fix.get('commit'))[:10])}` "
            f"{_slack_escape(fix.get('description') or '')}"
        )
    blamed = [b for b in d.get("blamed_commits") or d.get("blamed") or [] if isinstance(b, dict)]
    if blamed:
        lines.append(
            "introduced by "
            + ", ".join(
                f"`{_slack_escape(b.get('repo'))}@{_slack_escape(str(b.get('commit'))[:10])}`"
                for b in blamed[:5]
            )
        )
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": title.split(" ", 1)[-1][:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:2900]}},
    ]
    link = (d.get("links") or {}).get("report") or (d.get("links") or {}).get("commit")
    if link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open report"},
                        "url": link,
                    }
                ],
            }
        )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"{_slack_escape(event.type)} · {iso(event.time)} · id {event.id}",
                }
            ],
        }
    )
    fallback = f"{title}: {event.subject}" + (f" ({d['verdict']})" if d.get("verdict") else "")
    return {"text": _slack_escape(fallback), "blocks": blocks}


def body_for(event: Event, endpoint: Endpoint, config: AlertConfig, *, root: str) -> bytes:
    if endpoint.format == "slack":
        payload = slack_message(event)
    else:
        payload = cloudevent(event, source=config.source or default_source(root))
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The signature headers of one attempt."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(mac).decode("ascii"),
        "X-Hub-Signature-256": hub_signature(secret, body),
    }


def hub_signature(secret: str, body: bytes) -> str:
    """GitHub's ``X-Hub-Signature-256``: the body's HMAC-SHA256 keyed with the secret text."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class SignatureError(ValueError):
    """A webhook whose signature, timestamp or headers do not check out."""


def verify(secret: str, headers: dict[str, str], body: bytes, *, now: float | None = None) -> dict:
    """What a receiver does: check the Standard Webhooks signature and timestamp, return the
    JSON body. Any one of several space-separated ``v1,`` signatures may match."""
    h = {k.lower(): v for k, v in headers.items()}
    msg_id, ts, sigs = h.get("webhook-id"), h.get("webhook-timestamp"), h.get("webhook-signature")
    if not (msg_id and ts and sigs):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        stamp = int(ts)
    except ValueError:
        raise SignatureError(f"webhook-timestamp {ts!r} is not an integer") from None
    if abs((time.time() if now is None else now) - stamp) > TOLERANCE_SECONDS:
        raise SignatureError("webhook-timestamp is more than 5 minutes off: a replay?")
    expected = sign(secret, msg_id, stamp, body)["webhook-signature"].split(",", 1)[1]
    for candidate in sigs.split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected.encode()):
            return json.loads(body)
    raise SignatureError("no webhook-signature matches the body")
