"""Mobile: export audited models to the Android and iOS apps, with provenance inside the file.

Imports point one way: ``mobile`` imports ``conversion``, ``auditor``, ``training`` and ``pipelines``.
"""
