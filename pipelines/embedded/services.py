"""Service pipelines (``"service": {...}``, like Tensorboard): long-lived local processes, and
the ``services`` table that remembers them.

Each new job of a service pipeline replaces the running process with one that sees the new
input. The process listens on the spec's ``internalPort`` when it is free; otherwise the
engine picks a free port and rewrites that port number in the transform, as a Kubernetes
NodePort would remap it. It binds loopback: the spec's ``0.0.0.0`` (right in a pod) becomes
127.0.0.1 unless ``$TULIP_SERVICE_HOST`` says otherwise. ``tulip list pipeline`` shows the URL; ``tulip stop pipeline``
stops it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..datums import Datum
from ..errors import TulipError
from ..objects import ObjectStore
from ..transform import base_env, command, last_line, rewrite_pfs
from .db import Database, Migration

START_GRACE_SECONDS = 1.5
SERVICE_ENV = "TULIP_SERVICE"  # "<pipeline>@<store root>": a copied store's marker differs
# A spec's service binds every interface (0.0.0.0), as a Kubernetes pod must; run here, it
# binds this host only (loopback) unless $TULIP_SERVICE_HOST names another address.
HOST_ENV = "TULIP_SERVICE_HOST"
ANY_HOST = "0.0.0.0"
LOOPBACK = "127.0.0.1"

MIGRATIONS = [
    Migration(
        "service processes",
        """
        CREATE TABLE services (
            pipeline TEXT PRIMARY KEY,
            pid      INTEGER,
            port     INTEGER,
            url      TEXT,
            job_id   TEXT,
            started  REAL,
            state    TEXT NOT NULL
        )
        """,
    ),
]


@dataclass(frozen=True)
class ServiceRecord:
    pipeline: str
    pid: int | None
    port: int | None
    url: str | None
    job_id: str | None
    started: float | None
    state: str  # "running" or "stopped"


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


def service_marker(pipeline: str, root: Path) -> str:
    """What a service process carries in ``$TULIP_SERVICE``: its pipeline and its store."""
    return f"{pipeline}@{Path(root).resolve()}"


def bind_host() -> str:
    return os.environ.get(HOST_ENV) or LOOPBACK


def process_is_service(pid: int, pipeline: str, root: Path) -> bool:
    """Is ``pid`` still this store's service of this pipeline (not a reused pid, and not the
    service of a copy of this store, whose table names the same pid)?"""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    marker = f"{SERVICE_ENV}={service_marker(pipeline, root)}".encode()
    return marker in environ.split(b"\0")


class Services:
    """The service processes of one store."""

    def __init__(self, db: Database, objects: ObjectStore, root: Path):
        self.db = db
        self.objects = objects
        self.root = root

    def record(self, pipeline: str) -> ServiceRecord | None:
        r = self.db.execute("SELECT * FROM services WHERE pipeline = ?", (pipeline,)).fetchone()
        return None if r is None else ServiceRecord(**dict(r))

    def url(self, pipeline: str) -> str | None:
        """The URL of a running service, else None."""
        r = self.record(pipeline)
        return r.url if r is not None and r.state == "running" else None

    def stop(self, pipeline: str) -> bool:
        """Stop the service process, if it runs; True if one was stopped."""
        r = self.record(pipeline)
        if r is None or r.pid is None:
            return False
        stopped = False
        if process_is_service(r.pid, pipeline, self.root):
            try:
                os.killpg(r.pid, signal.SIGTERM)
                for _ in range(50):
                    if not process_is_service(r.pid, pipeline, self.root):
                        break
                    time.sleep(0.1)
                else:
                    os.killpg(r.pid, signal.SIGKILL)
                stopped = True
            except ProcessLookupError:
                pass
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE services SET state = 'stopped', pid = NULL WHERE pipeline = ?",
                (pipeline,),
            )
        return stopped

    def forget(self, pipeline: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM services WHERE pipeline = ?", (pipeline,))

    def start(self, pipeline: str, spec: dict, datum: Datum | None, job_id: str) -> str:
        """(Re)start the service on this datum's input; returns its URL."""
        self.stop(pipeline)
        base = self.root / "services" / pipeline
        shutil.rmtree(base, ignore_errors=True)
        pfs = base / "pfs"
        (pfs / "out").mkdir(parents=True)
        if datum is not None:
            for part in datum.parts:
                for f in part.files:
                    self.objects.materialize(f.hash, pfs / part.input / f.path.lstrip("/"))
        internal = int(spec["service"]["internalPort"])
        port = internal if port_free(internal) else free_port()
        transform = spec["transform"]

        host = bind_host()

        def remap(text: str) -> str:
            if host != ANY_HOST:
                text = text.replace(ANY_HOST, host)
            return re.sub(rf"\b{internal}\b", str(port), text) if port != internal else text

        cmd, _stdin = command(transform, pfs)
        cmd = [remap(c) for c in cmd]
        stdin = "\n".join(remap(rewrite_pfs(s, pfs)) for s in transform.get("stdin") or []) + "\n"
        env = base_env(transform, pfs)
        for k in transform.get("env") or {}:
            env[k] = remap(env[k])
        env.update(
            {
                "PFS_ROOT": str(pfs),
                SERVICE_ENV: service_marker(pipeline, self.root),
                "PORT": str(port),
                "PPS_PIPELINE_NAME": pipeline,
                "PACH_JOB_ID": job_id,
            }
        )
        log_path = self.root / "logs" / pipeline / "service.log"
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
            raise TulipError(
                f"service {pipeline} exited at once ({proc.returncode}): {last_line(log_path)}"
            )
        url = f"http://{LOOPBACK if host == ANY_HOST else host}:{port}"
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO services(pipeline, pid, port, url, job_id, started, state) "
                "VALUES (?,?,?,?,?,?,'running')",
                (pipeline, proc.pid, port, url, job_id, time.time()),
            )
        return url
