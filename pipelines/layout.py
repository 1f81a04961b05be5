"""What the pipelines write and where: the names several packages share, declared once.

A pipeline's spec lives in its own repo, ``<pipeline>.spec``, as ``/spec.json`` (Pachyderm's
layout), on either backend.
"""

from __future__ import annotations

SPEC_SUFFIX = ".spec"
SPEC_FILE = "/spec.json"
