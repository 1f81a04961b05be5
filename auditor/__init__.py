"""Audit: the lineage graph, the label-consistency checks, blame, and the verdict that gates Convert.

Imports point one way: ``auditor`` imports ``training`` and ``pipelines`` only.
"""
