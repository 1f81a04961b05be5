"""How a spec's ``transform`` becomes a local process: the same ``/pfs`` mapping for batch
jobs and for services, so that specs run unchanged here and on a cluster.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

PYTHON_NAMES = ("python", "python3")


def rewrite_pfs(text: str, pfs: Path) -> str:
    """Point ``/pfs`` at a local directory (only whole ``/pfs`` path prefixes)."""
    return re.sub(r"(?<![\w/.])/pfs(?=/|\b|$)", lambda _m: str(pfs), text)


def command(transform: dict, pfs: Path) -> tuple[list[str], str | None]:
    """The argv and stdin text of a transform, with ``/pfs`` mapped to ``pfs``."""
    cmd = [rewrite_pfs(c, pfs) for c in transform["cmd"]]
    if cmd and cmd[0] in PYTHON_NAMES:
        cmd[0] = sys.executable  # the engine's own interpreter, where Tulip is installed
    stdin = transform.get("stdin")
    text = "\n".join(rewrite_pfs(line, pfs) for line in stdin) + "\n" if stdin else None
    return cmd, text


def base_env(transform: dict, pfs: Path) -> dict[str, str]:
    """The process environment: ours, the venv's tools first, then the spec's ``env``."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    for k, v in (transform.get("env") or {}).items():
        env[k] = rewrite_pfs(str(v), pfs)
    return env


def seconds(duration: str | None) -> float | None:
    """A protobuf duration string (``"30s"``) in seconds."""
    if not duration:
        return None
    return float(duration.rstrip("s"))


def last_line(path: Path) -> str:
    """The last non-empty line of a log: what a failed process said last."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            lines = [ln.strip() for ln in f.read().decode("utf-8", "replace").splitlines()]
    except FileNotFoundError:
        return ""
    lines = [ln for ln in lines if ln]
    return lines[-1] if lines else ""
