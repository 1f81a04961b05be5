"""The lineage graph as OpenLineage run events, so Marquez and DataHub show the same jobs.

Each job becomes one run: a START event when it started and, once it is done, a COMPLETE,
FAIL or ABORT event. The job is the pipeline, in a URL-safe namespace (``namespace_for``:
the cluster's address, or the host and store path); inputs are the
input repos as datasets named ``<repo>@<branch>``, the output is the pipeline's repo, and each
dataset carries the exact commit as its ``version`` facet (plus a ``tulip_commit`` facet with
repo, branch and commit). Events are written, one JSON object per line, with the client's
``FileTransport``; ``curl -X POST -H 'Content-Type: application/json' -d @line
http://marquez:5000/api/v1/lineage`` ingests a line.

Imports point one way: ``auditor`` imports ``pipelines``, never the CLI.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path

import attr
import networkx as nx
from openlineage.client.event_v2 import (
    InputDataset,
    Job,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
)
from openlineage.client.facet_v2 import (
    DatasetFacet,
    RunFacet,
    dataset_version_dataset,
    documentation_job,
    error_message_run,
    job_type_job,
)
from openlineage.client.serde import Serde

from pipelines import __version__
from pipelines.backend import Backend
from pipelines.info import iso

from .lineage.graph import COMMIT, INPUT_OF, JOB, PRODUCED

PRODUCER = f"https://pypi.org/project/tulip-audit/{__version__}"
# Tulip's custom facets: one JSON Schema file per facet, shipped in the package
# (``auditor/openlineage_facets/<Facet>.json``, its ``$id`` this base), and pointed at as
# OpenLineage's own facets are, ``<file>#/$defs/<Facet>``.
FACET_SCHEMA_BASE = "https://pypi.org/project/tulip-audit/facets/1-0-0/"
FACET_SCHEMA = FACET_SCHEMA_BASE + "{0}.json#/$defs/{0}"
FACET_SCHEMA_DIR = Path(__file__).with_name("openlineage_facets")
# What Marquez accepts in a namespace name; anything else becomes "_".
_NAMESPACE_UNSAFE = re.compile(r"[^A-Za-z0-9_.:/=@;+\-]")
RUN_NAMESPACE = uuid.UUID("6f1c0a52-3b9e-4f6e-9a57-5d0c7f0e7b21")  # run IDs: uuid5 of pipeline@job

_TERMINAL = {
    "success": RunState.COMPLETE,
    "failure": RunState.FAIL,
    "unrunnable": RunState.FAIL,
    "killed": RunState.ABORT,
}


@attr.define
class TulipCommitDatasetFacet(DatasetFacet):
    """The exact commit a dataset (``<repo>@<branch>``) was read or written at."""

    repo: str
    branch: str | None
    commit: str

    @staticmethod
    def _get_schema() -> str:
        return FACET_SCHEMA.format("TulipCommitDatasetFacet")


@attr.define
class TulipDatumsRunFacet(RunFacet):
    """The datum counters of a Tulip (Pachyderm-style) job."""

    processed: int
    skipped: int
    failed: int
    recovered: int
    total: int
    specVersion: int

    @staticmethod
    def _get_schema() -> str:
        return FACET_SCHEMA.format("TulipDatumsRunFacet")


def safe_namespace(text: str) -> str:
    """``text`` as a namespace Marquez's name rule accepts (a space, ``%``, ``#`` … -> ``_``)."""
    return _NAMESPACE_UNSAFE.sub("_", text)


def namespace_for(backend: Backend) -> str:
    """A URL-safe namespace that tells stores apart: ``pachyderm://<host:port>`` for a
    cluster (its pachd address), ``tulip://<host>/<store path>`` for the embedded store
    (characters Marquez refuses become ``_``). ``--namespace`` overrides it."""
    address = getattr(backend, "address", None)
    if address:
        authority = re.sub(r"^[a-z]+://", "", str(address)).rstrip("/")
        return safe_namespace(f"pachyderm://{authority}")
    root = getattr(backend, "root", None)
    if root:
        path = Path(root).absolute().as_posix().lstrip("/")
        return safe_namespace(f"tulip://{socket.gethostname()}/{path}")
    return safe_namespace(f"tulip://{backend.name}")


def run_id(pipeline: str, job_id: str) -> str:
    """A stable UUID per job (a commit set's ID is shared by the jobs of every pipeline)."""
    return str(uuid.uuid5(RUN_NAMESPACE, f"{pipeline}@{job_id}"))


def _dataset(cls, namespace: str, commit: dict):
    return cls(
        namespace=namespace,
        name=f"{commit['repo']}@{commit.get('branch') or 'master'}",
        facets={
            "version": dataset_version_dataset.DatasetVersionDatasetFacet(
                datasetVersion=commit["commit"], producer=PRODUCER
            ),
            "tulip_commit": TulipCommitDatasetFacet(
                repo=commit["repo"],
                branch=commit.get("branch"),
                commit=commit["commit"],
                producer=PRODUCER,
            ),
        },
    )


def run_events(
    G: nx.MultiDiGraph, *, namespace: str, jobs: Iterable[str] | None = None
) -> list[RunEvent]:
    """START and terminal events for every job node of ``G`` (or those in ``jobs``), oldest
    first. Inputs are the job's input commits, outputs the commit it produced."""
    wanted = (
        sorted(jobs)
        if jobs is not None
        else sorted(n for n, a in G.nodes(data=True) if a.get("type") == JOB)
    )
    events: list[RunEvent] = []
    for node in wanted:
        a = G.nodes[node]
        if a.get("type") != JOB:
            continue
        inputs = [
            _dataset(InputDataset, namespace, G.nodes[u])
            for u, _v, k in sorted(G.in_edges(node, keys=True))
            if k == INPUT_OF and G.nodes[u].get("type") == COMMIT
        ]
        outputs = [
            _dataset(OutputDataset, namespace, G.nodes[v])
            for _u, v, k in sorted(G.out_edges(node, keys=True))
            if k == PRODUCED
        ]
        facets: dict = {
            "tulip_datums": TulipDatumsRunFacet(
                processed=a.get("data_processed", 0),
                skipped=a.get("data_skipped", 0),
                failed=a.get("data_failed", 0),
                recovered=a.get("data_recovered", 0),
                total=a.get("data_total", 0),
                specVersion=a.get("spec_version", 1),
                producer=PRODUCER,
            )
        }
        job_facets: dict = {
            "jobType": job_type_job.JobTypeJobFacet(
                processingType="BATCH", integration="TULIP", jobType="PIPELINE", producer=PRODUCER
            )
        }
        pipe = next(
            (u for u, _v, k in G.in_edges(node, keys=True) if k == "spec_of"),
            None,
        )
        description = ((G.nodes[pipe].get("spec") or {}).get("description") if pipe else None) or ""
        if description:
            job_facets["documentation"] = documentation_job.DocumentationJobFacet(
                description=description, producer=PRODUCER
            )
        run = Run(runId=run_id(a["pipeline"], a["job"]), facets=facets)
        job = Job(namespace=namespace, name=a["pipeline"], facets=job_facets)
        start_time = a.get("started") or a.get("created")
        events.append(
            RunEvent(
                eventType=RunState.START,
                eventTime=iso(start_time),
                run=run,
                job=job,
                inputs=inputs,
                outputs=outputs,
                producer=PRODUCER,
            )
        )
        terminal = _TERMINAL.get(a.get("state"))
        if terminal is None:
            continue  # still running: START only
        end_facets = dict(facets)
        if terminal != RunState.COMPLETE and a.get("reason"):
            end_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=a["reason"], programmingLanguage="python", producer=PRODUCER
            )
        events.append(
            RunEvent(
                eventType=terminal,
                eventTime=iso(a.get("finished") or start_time),
                run=Run(runId=run.runId, facets=end_facets),
                job=job,
                inputs=inputs,
                outputs=outputs,
                producer=PRODUCER,
            )
        )
    events.sort(key=lambda e: (e.eventTime, e.job.name, e.eventType != RunState.START))
    return events


def to_json_lines(events: Iterable[RunEvent]) -> str:
    return "".join(Serde.to_json(e) + "\n" for e in events)


def write_events(events: Iterable[RunEvent], path: Path | str) -> int:
    """Write events as JSON lines through OpenLineage's ``FileTransport``; returns the count.

    The file appears whole or not at all: events go to a temporary file beside it, which then
    replaces ``path``.
    """
    from openlineage.client.transport.file import FileConfig, FileTransport

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    count = 0
    try:
        transport = FileTransport(FileConfig(log_file_path=tmp, append=True))
        for e in events:
            transport.emit(e)
            count += 1
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count
