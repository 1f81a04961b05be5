"""Shared fixtures: a fresh store per test, run in-process and deterministically."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.shared import SESSION_TMP_ENV, flower_photos

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def store(tmp_path, monkeypatch):
    """An embedded store whose jobs run only when the test calls ``run(store)``."""
    from pipelines.embedded.store import EmbeddedStore

    monkeypatch.setenv("TULIP_NO_AUTORUN", "1")
    s = EmbeddedStore(tmp_path / "store")
    yield s
    s.close()


@pytest.fixture
def run_jobs():
    """Run every queued job of a store in this process; returns the jobs that ran."""
    from pipelines.runner import Runner

    return lambda s: Runner(s).run_until_idle()


@pytest.fixture
def tulip_cli(tmp_path):
    """Run the real `tulip` console script in a subprocess against a store in tmp_path."""
    root = tmp_path / "cli-store"
    exe = shutil.which("tulip", path=str(Path(sys.executable).parent)) or "tulip"

    def run(
        *args: str,
        input: bytes | None = None,
        check: bool = True,
        env: dict | None = None,
        cwd: Path | None = None,
        timeout: float = 600,
    ):
        full_env = {**os.environ, "TULIP_ROOT": str(root), **run.env, **(env or {})}
        proc = subprocess.run(
            [exe, *args],
            input=input,
            capture_output=True,
            env=full_env,
            cwd=cwd or tmp_path,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"tulip {' '.join(args)} exited {proc.returncode}\nstdout: {proc.stdout.decode()}\n"
                f"stderr: {proc.stderr.decode()}"
            )
        return proc

    run.root = root
    run.env = {}
    return run


@pytest.fixture(scope="session")
def flowers() -> Path:
    return flower_photos()


def pytest_collection_modifyitems(config, items):
    """Heaviest test files first (``@pytest.mark.cost(seconds)``, the longest first), the rest
    in collection order: pytest-xdist hands whole files to its workers in this order
    (``--dist loadfile --no-loadscope-reorder``), so the few multi-minute end-to-end files
    start at once on different workers instead of queueing behind each other at the end."""

    def cost(item) -> float:
        mark = item.get_closest_marker("cost")
        return float(mark.args[0]) if mark and mark.args else 0.0

    by_file: dict[str, float] = {}
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        by_file[path] = max(by_file.get(path, 0.0), cost(item))
    first_seen = {path: i for i, path in enumerate(by_file)}
    items.sort(
        key=lambda it: (
            -by_file[it.nodeid.split("::", 1)[0]],
            first_seen[it.nodeid.split("::", 1)[0]],
        )
    )


def pytest_configure(config):
    """The controller (or the lone process) makes the folder its workers share; the workers,
    started after this, inherit it through the environment."""
    if not hasattr(config, "workerinput") and SESSION_TMP_ENV not in os.environ:
        import tempfile

        os.environ[SESSION_TMP_ENV] = tempfile.mkdtemp(prefix="tulip-tests-")
        config._tulip_session_tmp = os.environ[SESSION_TMP_ENV]


def pytest_unconfigure(config):
    made = getattr(config, "_tulip_session_tmp", None)
    if made:
        shutil.rmtree(made, ignore_errors=True)
        os.environ.pop(SESSION_TMP_ENV, None)
