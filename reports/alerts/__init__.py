"""Alerts: the store's event outbox delivered as signed webhooks, durably, with retries.

* ``config``: where alerts go (``alerts.toml``);
* ``messages``: CloudEvents and Slack bodies, Standard Webhooks signatures;
* ``tables``: the ``deliveries`` and ``endpoints`` tables, the alerts' own migrations;
* ``events``: the outbox as alerts see it (listing, re-arming, test events, enrichment);
* ``delivery``: the deliverer (``python -m reports.alerts.delivery``) and the engine's sink.
"""
