"""Service pipelines (``"service": {...}``, like Tensorboard): long-lived local processes.

Each new job of a service pipeline replaces the running process with one that sees the new
input. The process listens on the spec's ``internalPort`` when it is free; otherwise the
engine picks a free port and rewrites that port number in the transform, as a Kubernetes
NodePort would remap it. ``tulip list pipeline`` shows the URL; ``tulip stop pipeline``
stops it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .datums import Datum
from .errors import TulipError

START_GRACE_SECONDS = 1.5


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int, marker: str) -> bool:
    """Is ``pid`` still our service (and not a reused pid)?"""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    return f"TULIP_SERVICE={marker}".encode() in environ


def stop_service(store, pipeline: str) -> bool:
    row = store.db.execute("SELECT * FROM services WHERE pipeline = ?", (pipeline,)).fetchone()
    if row is None or row["pid"] is None:
        return False
    stopped = False
    if _alive(row["pid"], pipeline):
        try:
            os.killpg(row["pid"], signal.SIGTERM)
            for _ in range(50):
                if not _alive(row["pid"], pipeline):
                    break
                time.sleep(0.1)
            else:
                os.killpg(row["pid"], signal.SIGKILL)
            stopped = True
        except ProcessLookupError:
            pass
    with store.transaction() as conn:
        conn.execute(
            "UPDATE services SET state = 'stopped', pid = NULL WHERE pipeline = ?", (pipeline,)
        )
    return stopped


def start_service(store, pipeline: str, spec: dict, datum: Datum | None, job_id: str) -> str | None:
    """(Re)start the service on this datum's input; returns its URL."""
    from .runner import _rewrite  # the same /pfs mapping as batch jobs

    stop_service(store, pipeline)
    base = store.root / "services" / pipeline
    shutil.rmtree(base, ignore_errors=True)
    pfs = base / "pfs"
    (pfs / "out").mkdir(parents=True)
    if datum is not None:
        for part in datum.parts:
            for f in part.files:
                store.objects.materialize(f.hash, pfs / part.input / f.path.lstrip("/"))
    service = spec["service"]
    internal = int(service["internalPort"])
    port = internal if port_free(internal) else free_port()
    transform = spec["transform"]

    def remap(text: str) -> str:
        text = _rewrite(text, pfs)
        return re.sub(rf"\b{internal}\b", str(port), text) if port != internal else text

    cmd = [remap(c) for c in transform["cmd"]]
    if cmd and cmd[0] in ("python", "python3"):
        cmd[0] = sys.executable
    stdin = "\n".join(remap(s) for s in transform.get("stdin") or []) + "\n"
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    for k, v in (transform.get("env") or {}).items():
        env[k] = remap(str(v))
    env.update(
        {
            "PFS_ROOT": str(pfs),
            "TULIP_SERVICE": pipeline,
            "PORT": str(port),
            "PPS_PIPELINE_NAME": pipeline,
            "PACH_JOB_ID": job_id,
        }
    )
    log_path = store.root / "logs" / pipeline / "service.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    stdin_file = base / "stdin.txt"
    stdin_file.write_text(stdin)
    with open(log_path, "ab") as out, open(stdin_file, "rb") as inp:
        proc = subprocess.Popen(
            cmd,
            stdin=inp,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=base,
            start_new_session=True,
        )
    time.sleep(START_GRACE_SECONDS)
    if proc.poll() is not None:
        from .runner import _last_line

        raise TulipError(
            f"service {pipeline} exited at once ({proc.returncode}): {_last_line(log_path)}"
        )
    url = f"http://127.0.0.1:{port}"
    with store.transaction() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO services(pipeline, pid, port, url, job_id, started, state) "
            "VALUES (?,?,?,?,?,?,'running')",
            (pipeline, proc.pid, port, url, job_id, time.time()),
        )
    return url


def restart_latest(store, pipeline: str) -> str | None:
    """Start a stopped service again on the current head of its inputs."""
    from . import specs as specmod
    from .datums import InputFile, enumerate_datums

    info = store.inspect_pipeline(pipeline)
    commits = {}
    for pin in specmod.pfs_inputs(info.spec["input"]):
        head = store.inspect_branch(pin.repo, pin.branch).head
        if head is not None:
            files = [InputFile(f.path, f.hash, f.size) for f in store.walk_files(pin.repo, head)]
            commits[pin.name] = (pin.repo, head, files)
    datums = enumerate_datums(info.spec["input"], commits)
    return start_service(store, pipeline, info.spec, datums[0] if datums else None, "restart")
