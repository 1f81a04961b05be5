"""Starting the local engine, as pachd would: one background runner per store.

The runner (``python -m pipelines.runner --root DIR``) holds an exclusive lock on
``runner.lock`` for as long as it works, so a second one exits at once. The store starts one
whenever a commit queues jobs, unless ``$TULIP_NO_AUTORUN`` is set (tests and scripts that run
jobs in the foreground).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = "runner.lock"
NO_AUTORUN_ENV = "TULIP_NO_AUTORUN"
RUNNER_MODULE = "pipelines.runner"


@contextmanager
def runner_lock(root: Path, *, blocking: bool = False) -> Iterator[bool]:
    """Hold the store's runner lock; yields False if another process holds it."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_NAME, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def runner_alive(root: Path) -> bool:
    with runner_lock(root) as got:
        return not got


def autorun_enabled() -> bool:
    return not os.environ.get(NO_AUTORUN_ENV)


def spawn_runner(root: Path) -> bool:
    """Start a detached runner unless one is already running; True if one was started."""
    if runner_alive(root):
        return False
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / "runner.log", "ab") as out:
        subprocess.Popen(
            [sys.executable, "-m", RUNNER_MODULE, "--root", str(root)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    return True
