"""A process killed, or a disk filling up, half-way through a commit leaves the store whole."""

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.embedded.store import EmbeddedStore

TULIP = [sys.executable, "-m", "tulip.cli.main"]


def make_tree(root: Path, n: int, size: int) -> Path:
    for i in range(n):
        p = root / f"c{i % 7}" / f"{i:05d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(size))
    return root


@pytest.mark.parametrize("delay", [0.3, 0.6, 0.9, 1.2, 1.6, 2.2])
def test_kill_during_put_leaves_all_or_nothing(tmp_path, delay):
    src = make_tree(tmp_path / "src", 2500, 2048)
    root = tmp_path / "store"
    env = {**os.environ, "TULIP_ROOT": str(root), "TULIP_NO_AUTORUN": "1"}
    subprocess.run([*TULIP, "create", "repo", "r"], env=env, check=True, capture_output=True)
    proc = subprocess.Popen(
        [*TULIP, "put", "file", "r@master:/", "-f", str(src), "-r", "-q"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = EmbeddedStore(root)
    commits = store.list_commits("r")
    assert len(commits) <= 1
    if commits:  # the whole commit, every file readable
        files = list(store.walk_files("r", commits[0].id))
        assert len(files) == 2500
        assert commits[0].size_bytes == 2500 * 2048
    else:
        assert store.inspect_branch("r", "master").head is None
    assert store.fsck(verify_content=True) == []
    store.gc()
    store.close()


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def test_disk_full_during_put_is_a_clear_error_and_commits_nothing(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "small.txt").write_bytes(b"x" * 1000)
    (src / "big.bin").write_bytes(os.urandom(1024 * 1024))
    root = tmp_path / "store"
    env = {**os.environ, "TULIP_ROOT": str(root), "TULIP_NO_AUTORUN": "1"}
    subprocess.run([*TULIP, "create", "repo", "r"], env=env, check=True, capture_output=True)
    proc = subprocess.run(
        [*TULIP, "put", "file", "r@master:/", "-f", str(src), "-r", "-q"],
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=_limit_file_size,
    )
    assert proc.returncode == 2, proc.stderr
    assert "no space left" in proc.stderr and "nothing was committed" in proc.stderr
    store = EmbeddedStore(root)
    assert store.list_commits("r") == []
    assert store.fsck() == []
    store.close()
