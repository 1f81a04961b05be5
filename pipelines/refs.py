"""Parse the pachctl-style references the CLI takes: ``REPO@BRANCH``, ``REPO@COMMIT``,
``REPO@BRANCH^`` (parent, repeatable or ``^N``), and ``REPO@REF:/PATH``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidPath, InvalidReference

_REPO = r"[A-Za-z0-9_\-.]+"
_REF = r"[A-Za-z0-9_\-.]+"
_PATTERN = re.compile(
    rf"^(?P<repo>{_REPO})(?:@(?P<ref>{_REF})(?P<ancestry>(?:\^\d*|~\d+)*))?(?::(?P<path>.*))?$"
)
COMMIT_ID = re.compile(r"^[0-9a-f]{32}$")
#: a short commit ID, as Tulip prints them (12 digits) or as git users type them (8 or more)
MIN_PREFIX = 8
COMMIT_PREFIX = re.compile(rf"^[0-9a-f]{{{MIN_PREFIX},31}}$")
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


@dataclass(frozen=True)
class Ref:
    repo: str
    ref: str = "master"
    ancestry: int = 0
    path: str | None = None

    @property
    def is_commit_id(self) -> bool:
        return bool(COMMIT_ID.match(self.ref))

    @property
    def may_be_prefix(self) -> bool:
        """Could the ref be a short commit ID (when no branch has that name)?"""
        return bool(COMMIT_PREFIX.match(self.ref))

    def __str__(self) -> str:
        s = f"{self.repo}@{self.ref}" + (
            "^" * self.ancestry if self.ancestry <= 3 else f"^{self.ancestry}"
        )
        return s + (f":{self.path}" if self.path is not None else "")


def parse_ref(text: str, *, default_branch: str = "master", require_path: bool = False) -> Ref:
    """Parse a reference; raises InvalidReference with the accepted forms on failure."""
    m = _PATTERN.match(text.strip()) if text else None
    if not m:
        raise InvalidReference(
            f"malformed reference {text!r}; expected REPO, REPO@BRANCH, REPO@COMMIT, "
            "REPO@BRANCH^ or REPO@REF:/PATH"
        )
    ancestry = 0
    for part in re.findall(r"\^\d*|~\d+", m.group("ancestry") or ""):
        digits = part[1:]
        ancestry += int(digits) if digits else 1
    path = m.group("path")
    if path is not None:
        path = normalize_path(path or "/")
    elif require_path:
        raise InvalidReference(f"reference {text!r} needs a path: REPO@REF:/PATH")
    return Ref(m.group("repo"), m.group("ref") or default_branch, ancestry, path)


def normalize_path(path: str) -> str:
    """Canonical repo path: absolute, '/'-separated, no '.', no '..', no trailing slash.

    Raises InvalidPath for a path that would climb out of the repo.
    """
    if "\x00" in path:
        raise InvalidPath(f"path {path!r} contains a NUL byte")
    parts: list[str] = []
    for part in path.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise InvalidPath(
                f"path {path!r} climbs out of the repo with '..'; use a path inside it"
            )
        parts.append(part)
    return "/" + "/".join(parts)
