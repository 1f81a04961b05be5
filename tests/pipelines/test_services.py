"""Service pipelines on the embedded engine: a real long-lived process per store, bound to
loopback, and stopped only by its own store (a copy of the store does not kill it)."""

from __future__ import annotations

import os
import shutil
import sys
import time

import pytest

from pipelines.embedded.services import process_is_service
from pipelines.embedded.store import EmbeddedStore

# Writes the argv it got and sleeps: a stand-in for `tensorboard --host 0.0.0.0 --port 6006`.
SLEEPER = "import sys, time; open('argv.txt', 'w').write(' '.join(sys.argv[1:])); time.sleep(120)"


def _spec(port: int) -> dict:
    return {
        "pipeline": {"name": "Board"},
        "transform": {
            "cmd": [sys.executable, "-c", SLEEPER, "--host", "0.0.0.0", "--port", str(port)]
        },
        "service": {"internalPort": port},
        "input": {"pfs": {"repo": "r", "glob": "/"}},
    }


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.delenv("TULIP_SERVICE_HOST", raising=False)
    s = EmbeddedStore(tmp_path / "store")
    yield s
    s.services.stop("Board")
    s.close()


def _argv(store: EmbeddedStore) -> str:
    path = store.root / "services" / "Board" / "argv.txt"
    for _ in range(100):
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"the service wrote no {path}")


def test_a_service_binds_loopback_where_the_spec_says_every_interface(store):
    url = store.services.start("Board", _spec(16006), None, "job-1")
    assert url.startswith("http://127.0.0.1:")
    assert "--host 127.0.0.1" in _argv(store) and "0.0.0.0" not in _argv(store)


def test_tulip_service_host_binds_where_asked(store, monkeypatch):
    monkeypatch.setenv("TULIP_SERVICE_HOST", "0.0.0.0")
    url = store.services.start("Board", _spec(16007), None, "job-1")
    assert "--host 0.0.0.0" in _argv(store)
    assert url.startswith("http://127.0.0.1:")  # where this machine reaches it


def test_a_copied_store_does_not_stop_the_original_service(store, tmp_path):
    store.services.start("Board", _spec(16008), None, "job-1")
    pid = store.services.record("Board").pid
    copy_root = tmp_path / "copy"
    shutil.copytree(store.root, copy_root)
    copy = EmbeddedStore(copy_root)
    try:
        assert copy.services.record("Board").pid == pid  # the copied table names that pid
        assert not process_is_service(pid, "Board", copy_root)
        assert copy.services.stop("Board") is False
    finally:
        copy.close()
    os.kill(pid, 0)  # still running
    assert process_is_service(pid, "Board", store.root)
    assert store.services.stop("Board") is True
    _, status = os.waitpid(pid, 0)  # this test started it: reap it, and see how it ended
    assert os.WIFSIGNALED(status)
