"""Audit: the label-consistency checks, the lineage graph, blame, and the verdict that gates Convert.

The use cases, one function each (the CLI and the Audit stage call them; nothing else does
the assembling):

* ``audit_commit(backend, ref, *, reference, policy, ...)``: audit a data commit;
* ``audit_folder(path, *, reference, policy, ...)``: audit a plain folder of class folders;
* ``audit_embeddings(path, *, reference, policy, ...)``: audit an .npz or Parquet file of
  embeddings made elsewhere;
* ``lineage_around(backend, ref, *, direction, files)``: the lineage graph around a commit;
* ``lineage_diff(backend, ref_a, ref_b)``: what changed in the data between two models;

and ``auditor.blame.blame(backend, ref)``: which data commits and files are behind the findings.

Imports point one way: ``auditor`` imports ``training`` and ``pipelines`` only. The names are
resolved on first use, so ``import auditor`` imports none of its modules.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "audit_commit": "auditor.run",
    "audit_folder": "auditor.run",
    "audit_embeddings": "auditor.external",
    "lineage_around": "auditor.lineage.queries",
    "lineage_diff": "auditor.lineage.diff",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'auditor' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
