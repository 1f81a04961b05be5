"""Reports and alerts: the Flask app over the store, standalone HTML reports, signed webhooks.

Imports point one way: ``reports`` imports ``auditor``, ``mobile`` and ``pipelines``; nothing imports it.
"""
