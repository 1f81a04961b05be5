"""The environment a Pachyderm pipeline worker gives its user code, pointed at the double.

A worker pod has no ``$PACHD_ADDRESS`` and no pachctl config. What it has (pachd's
``workerPodSpec`` in src/server/pps/server/worker_rc.go, the driver's ``UserCodeEnv`` in
src/server/worker/driver/driver.go, and Kubernetes' service links):

* ``PACHD_PEER_SERVICE_HOST``/``_PORT`` (and ``PACHD_SERVICE_HOST``/``_PORT``, with their
  ``*_PORT_*_TCP*`` siblings): Kubernetes announces every service of pachd's namespace to
  every pod; the pachd-peer service is how user code reaches pachd;
* ``PPS_PIPELINE_NAME``, ``PPS_PROJECT_NAME``, ``PPS_SPEC_COMMIT``, ``PPS_POD_NAME``,
  ``PPS_WORKER_IP``, ``PPS_WORKER_GRPC_PORT``, ``PEER_PORT``, ``PACH_ROOT``,
  ``PACH_NAMESPACE``, ``STORAGE_BACKEND``, the spec's ``transform.env``;
* per datum: ``PACH_JOB_ID``, ``PACH_DATUM_ID``, ``PACH_OUTPUT_COMMIT_ID``, and for each
  input ``<name>`` (its mount path) and ``<name>_COMMIT``.

``worker_environment`` builds exactly that (plus ``PATH``, and a ``HOME`` with no
``.pachyderm`` in it), so a stage run with it meets what it meets on a cluster.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from .server import PachdProtocolDouble

PPS_WORKER_GRPC_PORT = "1080"  # pachd's default worker port
PEER_PORT = "1653"


def _service_links(name: str, host: str, port: int) -> dict[str, str]:
    """What Kubernetes sets for one service (the "docker links" variables)."""
    prefix = name.upper().replace("-", "_")
    tcp = f"tcp://{host}:{port}"
    return {
        f"{prefix}_SERVICE_HOST": host,
        f"{prefix}_SERVICE_PORT": str(port),
        f"{prefix}_PORT": tcp,
        f"{prefix}_PORT_{port}_TCP": tcp,
        f"{prefix}_PORT_{port}_TCP_PROTO": "tcp",
        f"{prefix}_PORT_{port}_TCP_PORT": str(port),
        f"{prefix}_PORT_{port}_TCP_ADDR": host,
    }


def worker_environment(
    pachd: PachdProtocolDouble,
    *,
    pipeline: str,
    job: str,
    inputs: dict[str, tuple[Path | str, str]],
    home: Path,
    spec_env: dict[str, str] | None = None,
    spec_commit: str | None = None,
) -> dict[str, str]:
    """A worker's user-code environment for one datum of ``pipeline``'s job ``job``.

    ``inputs``: input name -> (where it is mounted, the commit it holds). ``home`` becomes
    ``$HOME``; it must hold no pachctl config (a worker has none)."""
    if (Path(home) / ".pachyderm").exists():
        raise ValueError(f"{home} holds a pachctl config; a worker has none")
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "HOSTNAME": f"pipeline-default-{pipeline.lower()}-v1-abcde",
        **_service_links("pachd-peer", pachd.host, pachd.port),
        **_service_links("pachd", pachd.host, pachd.port),
        "PPS_PIPELINE_NAME": pipeline,
        "PPS_PROJECT_NAME": "default",
        "PPS_SPEC_COMMIT": spec_commit or uuid.uuid4().hex,
        "PPS_POD_NAME": f"pipeline-default-{pipeline.lower()}-v1-abcde",
        "PPS_WORKER_IP": "10.244.0.17",
        "PPS_WORKER_GRPC_PORT": PPS_WORKER_GRPC_PORT,
        "PEER_PORT": PEER_PORT,
        "PACH_ROOT": "/pach",
        "PACH_NAMESPACE": "default",
        "STORAGE_BACKEND": "LOCAL",
        "POSTGRES_HOST": "",
        "POSTGRES_PORT": "",
        **(spec_env or {}),
        "PACH_JOB_ID": job,
        "PACH_OUTPUT_COMMIT_ID": job,
        "PACH_DATUM_ID": uuid.uuid4().hex,
    }
    for name, (mount, commit) in inputs.items():
        env[name] = str(mount)
        env[f"{name}_COMMIT"] = commit
    return env
