"""pachctl's ``--raw`` shape: the records as Pachyderm 2.x's protojson messages.

Scripts written for ``pachctl ... --raw`` read ``.commit.id``, ``.origin.kind``,
``.details.size_bytes`` (a string: protojson writes int64 as strings), ``file_type`` ``FILE`` or
``DIR`` and job ``state`` ``JOB_SUCCESS``. These functions turn Tulip's records
(``pipelines.info``) into exactly those messages (``pfs_v2.RepoInfo``, ``CommitInfo``,
``FileInfo``, ``pps_v2.JobInfo``) as plain dicts: proto field names (snake_case), enums by
name, int64 as decimal strings, bytes as base64, timestamps as RFC 3339 in UTC, and fields at
their default value left out, as Go's protojson does. Nothing here imports pachyderm-sdk, so
the embedded store speaks it too; tests parse the output with pachyderm-sdk's own messages.

``tulip -o json`` stays Tulip's friendly shape; this is the compatibility shape (``--raw``).
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
from collections.abc import Iterable
from typing import Any

from .info import (
    JOB_CREATED,
    JOB_FAILURE,
    JOB_KILLED,
    JOB_RUNNING,
    JOB_SUCCESS,
    JOB_UNRUNNABLE,
    CommitInfo,
    CommitRef,
    FileInfo,
    JobInfo,
    RepoInfo,
)
from .layout import PACHYDERM_PROJECT

# Tulip's job states to pps_v2.JobState names.
JOB_STATE_NAMES = {
    JOB_CREATED: "JOB_CREATED",
    JOB_RUNNING: "JOB_RUNNING",
    JOB_SUCCESS: "JOB_SUCCESS",
    JOB_FAILURE: "JOB_FAILURE",
    JOB_UNRUNNABLE: "JOB_UNRUNNABLE",
    JOB_KILLED: "JOB_KILLED",
}
FILE_TYPE_NAMES = {"file": "FILE", "dir": "DIR"}


def timestamp(ts: float | None) -> str | None:
    """google.protobuf.Timestamp in protojson: UTC, 'Z', 0, 3, 6 or 9 fractional digits."""
    if ts is None:
        return None
    micros = round(ts * 1_000_000)
    seconds, micro = divmod(micros, 1_000_000)
    base = _dt.datetime.fromtimestamp(seconds, _dt.UTC).replace(tzinfo=None).isoformat()
    if micro == 0:
        return f"{base}Z"
    if micro % 1000 == 0:
        return f"{base}.{micro // 1000:03d}Z"
    return f"{base}.{micro:06d}Z"


def _int64(n: int | None) -> str | None:
    return None if not n else str(int(n))


def _pruned(d: dict[str, Any]) -> dict[str, Any]:
    """Leave out fields at their default (None, "", 0, empty), as protojson does."""
    return {k: v for k, v in d.items() if v not in (None, "", "0", {}, [])}


def repo(name: str, *, type: str = "user") -> dict:
    return {"name": name, "type": type, "project": {"name": PACHYDERM_PROJECT}}


def branch(repo_name: str, name: str) -> dict:
    return {"repo": repo(repo_name), "name": name}


def commit(repo_name: str, commit_id: str, branch_name: str | None = None) -> dict:
    return _pruned(
        {
            "repo": repo(repo_name),
            "id": commit_id,
            "branch": branch(repo_name, branch_name) if branch_name else None,
        }
    )


def _commit_ref(ref: CommitRef) -> dict:
    return commit(ref.repo, ref.id, ref.branch)


def repo_info(r: RepoInfo) -> dict:
    """pfs_v2.RepoInfo."""
    size = _int64(r.size_bytes)
    return _pruned(
        {
            "repo": repo(r.name, type=r.type),
            "created": timestamp(r.created),
            "size_bytes_upper_bound": size,
            "description": r.description,
            "branches": [branch(r.name, b) for b in r.branches],
            "details": {"size_bytes": size} if size else None,
        }
    )


def commit_info(c: CommitInfo) -> dict:
    """pfs_v2.CommitInfo; ``details.size_bytes`` is the commit's size (a string)."""
    size = _int64(c.size_bytes)
    return _pruned(
        {
            "commit": commit(c.repo, c.id, c.branch),
            "origin": {"kind": c.origin},
            "description": c.description,
            "parent_commit": commit(c.repo, c.parent, c.branch) if c.parent else None,
            "started": timestamp(c.started),
            "finishing": timestamp(c.finished),
            "finished": timestamp(c.finished),
            "direct_provenance": [_commit_ref(p) for p in c.direct_provenance],
            "error": c.error,
            "size_bytes_upper_bound": size,
            "details": {"size_bytes": size} if size else None,
            "metadata": dict(c.metadata),
        }
    )


def file_info(f: FileInfo, *, branch_name: str | None = None) -> dict:
    """pfs_v2.FileInfo; the hash (sha256 hex in Tulip) is bytes, so base64 here."""
    return _pruned(
        {
            "file": {"commit": commit(f.repo, f.commit, branch_name), "path": f.path},
            "file_type": FILE_TYPE_NAMES.get(f.type, "RESERVED"),
            "size_bytes": _int64(f.size),
            "hash": base64.b64encode(bytes.fromhex(f.hash)).decode("ascii") if f.hash else None,
        }
    )


def job_info(j: JobInfo) -> dict:
    """pps_v2.JobInfo; its output commit is the pipeline's repo at the job's (global) ID."""
    job_pipeline = {"project": {"name": PACHYDERM_PROJECT}, "name": j.pipeline}
    return _pruned(
        {
            "job": {"pipeline": job_pipeline, "id": j.id},
            "pipeline_version": _int64(j.spec_version),
            "output_commit": commit(j.pipeline, j.output_commit or j.id, "master"),
            "data_processed": _int64(j.data_processed),
            "data_skipped": _int64(j.data_skipped),
            "data_total": _int64(j.data_total),
            "data_failed": _int64(j.data_failed),
            "data_recovered": _int64(j.data_recovered),
            "state": JOB_STATE_NAMES.get(j.state, "JOB_STATE_UNKNOWN"),
            "reason": j.reason,
            "created": timestamp(j.created),
            "started": timestamp(j.started),
            "finished": timestamp(j.finished),
        }
    )


def stream(messages: Iterable[dict]) -> Iterable[str]:
    """One compact JSON object per line, as ``pachctl list ... --raw`` streams them."""
    for m in messages:
        yield json.dumps(m, separators=(",", ":"), ensure_ascii=False)
