"""Which backend a command talks to: ``--backend`` or ``$TULIP_BACKEND``, the embedded store
by default, at ``--root`` or ``$TULIP_ROOT`` or ``./.tulip``.

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
