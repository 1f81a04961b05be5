"""Which backend a command talks to: ``--backend`` or ``$TULIP_BACKEND``, the embedded store
by default, at ``--root`` or ``$TULIP_ROOT`` or ``./.tulip``; and which one a pipeline stage
talks to (:func:`stage_backend`), from the environment its engine gives it.

The one module that names the implementations, so that ``backend.py`` (the interface) and
the implementations depend only on each other one way.
"""

from __future__ import annotations

import os
from pathlib import Path

from .backend import BACKEND_ENV, ROOT_ENV, Backend
from .errors import TulipError

KINDS = ("embedded", "pachyderm")


def default_root() -> Path:
    return Path(os.environ.get(ROOT_ENV) or ".tulip")


def backend_kind(backend: str | None = None) -> str:
    kind = (backend or os.environ.get(BACKEND_ENV) or "embedded").lower()
    if kind not in KINDS:
        raise TulipError(f"unknown backend {kind!r}; use 'embedded' or 'pachyderm'")
    return kind


def backend_type(backend: str | None = None) -> type[Backend]:
    """The class of the backend asked for, without opening or connecting to anything."""
    if backend_kind(backend) == "embedded":
        from .embedded.store import EmbeddedStore

        return EmbeddedStore
    from .pachyderm import PachydermBackend

    return PachydermBackend


def open_backend(root: Path | str | None = None, *, backend: str | None = None) -> Backend:
    """The backend the user asked for: ``--backend``/``$TULIP_BACKEND``, embedded by default."""
    if backend_kind(backend) == "embedded":
        from .embedded.store import EmbeddedStore

        return EmbeddedStore(Path(root) if root else default_root())
    from .pachyderm import PachydermBackend

    return PachydermBackend.from_environment()


def stage_backend() -> Backend | None:
    """The store a running pipeline stage's data lives in, or None when there is none.

    Every stage that reads history or writes back (the Audit stage, its report) opens its
    store here, so that each engine's environment is known in one place:

    * the embedded engine sets ``$TULIP_ROOT`` for its processes: that store, never created;
    * a Pachyderm worker has neither ``$PACHD_ADDRESS`` nor a pachctl config, only what
      Kubernetes and the worker set (``$PACHD_PEER_SERVICE_HOST``/``_PORT``, ``$PPS_*``):
      pachyderm-sdk's in-cluster client, version-checked (``PachydermBackend.from_environment``);
    * ``$PACHD_ADDRESS`` (a stage run by hand against a cluster): that cluster;
    * otherwise (a stage run by hand on plain folders): None.
    """
    root = os.environ.get(ROOT_ENV, "").strip()
    if root:
        from .embedded.store import EmbeddedStore

        return EmbeddedStore(root, create=False)
    from .pachyderm import PACHD_ADDRESS_ENV, PachydermBackend, in_worker

    if in_worker() or os.environ.get(PACHD_ADDRESS_ENV, "").strip():
        return PachydermBackend.from_environment()
    return None
