"""The records a backend hands out, shaped like Pachyderm 2.x's ``*Info`` messages.

Both the embedded store and the Pachyderm backend return these, so lineage, blame, reports
and the CLI never see which one they talk to. Times are POSIX seconds (floats); ``as_dict``
renders them as ISO-8601 UTC for JSON output.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field
from typing import Any

USER = "USER"
AUTO = "AUTO"

# Job states, as in Pachyderm's JobState (without the JOB_ prefix).
JOB_CREATED = "created"
JOB_RUNNING = "running"
JOB_SUCCESS = "success"
JOB_FAILURE = "failure"
JOB_UNRUNNABLE = "unrunnable"
JOB_KILLED = "killed"
FINAL_JOB_STATES = frozenset({JOB_SUCCESS, JOB_FAILURE, JOB_UNRUNNABLE, JOB_KILLED})


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return (
        _dt.datetime.fromtimestamp(ts, _dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _jsonable(obj: Any) -> Any:
    d = asdict(obj)
    for key in ("created", "started", "finished", "updated"):
        if key in d and isinstance(d[key], int | float):
            d[key] = iso(d[key])
    return d


@dataclass(frozen=True)
class CommitRef:
    """One commit of one repo, as it appears in provenance lists."""

    repo: str
    branch: str | None
    id: str

    def __str__(self) -> str:
        return f"{self.repo}@{self.id}"


@dataclass(frozen=True)
class RepoInfo:
    name: str
    type: str  # "user" for data and pipeline output repos, "spec" for pipeline specs
    created: float
    description: str = ""
    size_bytes: int = 0  # of the master head
    branches: list[str] = field(default_factory=list)
    pipeline: str | None = None  # the pipeline writing this repo, if any

    def as_dict(self) -> dict:
        return _jsonable(self)


@dataclass(frozen=True)
class BranchInfo:
    repo: str
    name: str
    head: str | None
    provenance: list[tuple[str, str]] = field(default_factory=list)  # (repo, branch)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["provenance"] = [{"repo": r, "branch": b} for r, b in self.provenance]
        return d


@dataclass(frozen=True)
class CommitInfo:
    repo: str
    branch: str | None
    id: str
    origin: str
    parent: str | None
    started: float
    finished: float | None
    size_bytes: int
    description: str = ""
    error: str | None = None
    direct_provenance: list[CommitRef] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> CommitRef:
        return CommitRef(self.repo, self.branch, self.id)

    def as_dict(self, *, provenance: list[CommitRef] | None = None) -> dict:
        d = _jsonable(self)
        if provenance is not None:
            d["provenance"] = [asdict(p) for p in provenance]
        return d


@dataclass(frozen=True)
class FileInfo:
    path: str
    type: str  # "file" or "dir"
    size: int
    hash: str | None  # sha256 of the content; None for directories
    commit: str
    repo: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FileChange:
    """One line of ``diff file`` and ``find commit``."""

    path: str
    change: str  # "added", "modified" or "deleted"
    old_hash: str | None = None
    new_hash: str | None = None
    old_size: int | None = None
    new_size: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PathCommit:
    """A commit that changed a path: one row of ``find commit``."""

    commit: CommitInfo
    change: str
    files: list[str]

    def as_dict(self) -> dict:
        d = self.commit.as_dict()
        d["change"] = self.change
        d["files"] = self.files
        return d


@dataclass(frozen=True)
class PipelineInfo:
    name: str
    spec: dict
    version: int
    spec_commit: str
    state: str  # "running", "paused" (stopped), or "failure" for a service that cannot start
    created: float
    updated: float
    inputs: list[tuple[str, str]] = field(default_factory=list)  # (repo, branch)
    description: str = ""
    service_url: str | None = None

    def as_dict(self) -> dict:
        d = _jsonable(self)
        d["inputs"] = [{"repo": r, "branch": b} for r, b in self.inputs]
        return d


@dataclass(frozen=True)
class JobInfo:
    pipeline: str
    id: str
    state: str
    reason: str | None
    created: float
    started: float | None
    finished: float | None
    data_processed: int = 0
    data_skipped: int = 0
    data_failed: int = 0
    data_recovered: int = 0
    data_total: int = 0
    spec_version: int = 1
    output_commit: str | None = None

    @property
    def done(self) -> bool:
        return self.state in FINAL_JOB_STATES

    def as_dict(self) -> dict:
        return _jsonable(self)


@dataclass(frozen=True)
class DatumInfo:
    pipeline: str
    job: str
    id: str  # the datum hash
    state: str  # "success", "failed", "skipped", "recovered"
    files: list[str]
    tries: int = 0
    reason: str | None = None
    started: float | None = None
    finished: float | None = None

    def as_dict(self) -> dict:
        return _jsonable(self)
