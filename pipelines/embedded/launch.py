"""Starting the local engine, as pachd would: one background runner per store.

The runner (``python -m pipelines.runner --root DIR``) holds an exclusive lock on
``runner.lock`` for as long as it works, so a second one exits at once; the lock file names
its process, so ``stop_runner`` (a killed ``tulip demo``) can end it and the stages it runs. The store starts one
whenever a commit queues jobs, unless ``$TULIP_NO_AUTORUN`` is set (tests and scripts that run
jobs in the foreground).
"""

from __future__ import annotations

import fcntl
import os
import signal
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
            f.seek(0)
            f.truncate()
            f.write(f"{os.getpid()}\n")
            f.flush()
            yield True
        finally:
            f.seek(0)
            f.truncate()
            f.flush()
            fcntl.flock(f, fcntl.LOCK_UN)


def runner_alive(root: Path) -> bool:
    with runner_lock(root) as got:
        return not got


def stop_runner(root: Path) -> bool:
    """End the store's runner, if one works, and the stage processes it started (its process
    group); True if there was one. Jobs it was running are re-run by the next runner."""
    if not runner_alive(root):
        return False
    try:
        pid = int((root / LOCK_NAME).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    if pid == os.getpid():
        return False
    try:
        os.killpg(pid, signal.SIGTERM)  # spawn_runner started it in a session of its own
    except ProcessLookupError:
        return False
    except PermissionError:
        os.kill(pid, signal.SIGTERM)
    return True


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
