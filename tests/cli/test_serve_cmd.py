"""`tulip serve` for real: it binds loopback, prints its address, and guards non-loopback binds
with a token."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest


def _serve(root: Path, *args: str, log: Path) -> tuple[subprocess.Popen, str]:
    exe = shutil.which("tulip", path=str(Path(sys.executable).parent)) or "tulip"
    with open(log, "wb") as err:
        proc = subprocess.Popen([exe, "--root", str(root), "serve", "--port", "0", *args],
                                stdout=subprocess.PIPE, stderr=err, text=True)  # fmt: skip
    return proc, proc.stdout.readline()


def _get(url: str, **headers: str) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture
def root(tulip_cli):
    tulip_cli("create", "repo", "flowers", env={"TULIP_NO_AUTORUN": "1"})
    return tulip_cli.root


def test_serve_binds_loopback_and_answers(root, tmp_path):
    proc, line = _serve(root, log=tmp_path / "serve.log")
    try:
        m = re.match(r"Serving (.+) at (http://127\.0\.0\.1:\d+/)$", line.strip())
        assert m, line
        assert Path(m.group(1)) == root.absolute()
        status, body = _get(m.group(2) + "api/overview")
        assert status == 200 and json.loads(body)["repos"][0]["name"] == "flowers"
        assert _get(m.group(2) + "healthz")[0] == 200
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_non_loopback_bind_makes_up_a_token(root, tmp_path):
    proc, line = _serve(root, "--host", "0.0.0.0", log=tmp_path / "serve.log")
    try:
        m = re.search(r"at http://0\.0\.0\.0:(\d+)/\?token=(\S+)$", line.strip())
        assert m, line
        port, token = m.groups()
        assert _get(f"http://127.0.0.1:{port}/healthz")[0] == 401
        assert _get(f"http://127.0.0.1:{port}/healthz", Authorization=f"Bearer {token}")[0] == 200
    finally:
        proc.terminate()
        proc.wait(10)
    assert "a token is required" in (tmp_path / "serve.log").read_text()


def test_serve_without_a_store_says_so(tulip_cli, tmp_path):
    r = tulip_cli("--root", str(tmp_path / "nothing"), "serve", check=False)
    assert r.returncode == 2 and b"no Tulip store" in r.stderr


def test_serve_on_a_taken_port_says_so(root, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        exe = shutil.which("tulip", path=str(Path(sys.executable).parent)) or "tulip"
        r = subprocess.run(
            [exe, "--root", str(root), "serve", "--port", str(port)],
            capture_output=True,
            timeout=60,
        )
    assert r.returncode == 2 and b"cannot listen" in r.stderr
