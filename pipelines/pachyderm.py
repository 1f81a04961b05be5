"""A real Pachyderm 2.x cluster behind the ``Backend`` interface, through ``pachyderm-sdk``.

``pachyderm-sdk`` is the maintained successor of python-pachyderm (which cannot import with the
protobuf TensorFlow needs). Everything goes through its ``Client`` over gRPC; project
``default``. Pachyderm's shapes are mapped onto ``pipelines.info`` so that lineage, blame,
reports and export see what they see from the embedded store. The 2.x quirks handled here:

- A pipeline's spec repo is ``Repo(name=P, type="spec")``; we call it ``P.spec``, as the
  embedded store does. Its ``P.meta`` repo (type "meta", stats) is hidden: its commits join
  every commit set of ``P`` but mean nothing to lineage.
- ``direct_provenance`` lists an unchanged input under its older commit ID, and an output
  commit's provenance includes ``P.spec@<id>``; both are passed through unchanged, since the
  embedded store records provenance the same way (``addCommit`` in driver/commit.go).
- ``InspectCommitSet`` also returns the older commits a set depends on (commit-set
  provenance); ``commit_set`` keeps only the commits that carry the set's ID.
- There is no ``list file --history`` in 2.x. ``find_commits`` and ``introduced_by`` walk
  parents with one server-side ``DiffFile`` per commit. (The ``FindCommits`` RPC only matches
  exact file paths, not directories, and says nothing about the kind of change.)
- File hashes are pachd's (over chunk hashes): equal content gives equal hashes on one
  cluster, but they are not sha256 of the bytes as in the embedded store.
- Spec commits hold no files in 2.x (pachd keeps specs in its database: "create an empty
  spec commit to mark the update", pps api_server.go). The embedded store keeps each version
  in ``P.spec@<id>:/spec.json``; here that file is served from ``ListPipeline(history=-1)``
  (``user_spec_json`` of the version whose ``spec_commit`` is the commit), rendered exactly as
  the embedded store writes it, so lineage sees every spec version on both backends.
- pachd's reason for a failed job names the failed datum; the stage's own last stderr line
  (Tulip's failure sentence, e.g. "gate blocked: ...") is in the job's logs, and is appended
  to the reason and to the output commit's error, as the embedded engine reports it.

- Creating a pipeline over a repo with no branch yet makes pachd give that branch an empty
  AUTO commit (``fillNewBranches`` in driver/branch.go); it is shown as it is.

Sources: pachyderm/pachyderm src/server/pfs/server/driver/{commit,branch,commit_set,file}.go,
src/internal/pfsdb (CommitSetProvenance), src/server/pps/server/api_server.go.

A cluster that cannot be reached raises ``BackendUnavailable`` within ``connect_timeout``
seconds (a version call with a deadline), never a hang.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import grpc
from pachyderm_sdk import Client
from pachyderm_sdk import constants as sdk_constants
from pachyderm_sdk.api import metadata as mdapi
from pachyderm_sdk.api import pfs, pps

from . import specs as specmod
from .backend import Backend, CommitWriter, file_path, walk_tree
from .errors import (
    BackendUnavailable,
    BranchMoved,
    BranchNotFound,
    CommitConflict,
    CommitNotFound,
    FileNotFound,
    InvalidPath,
    InvalidSpec,
    JobNotFound,
    PipelineNotFound,
    RepoExists,
    RepoNotFound,
    SourceChanged,
    TulipError,
    UnsupportedCluster,
)
from .info import (
    AUTO,
    JOB_CREATED,
    JOB_FAILURE,
    JOB_KILLED,
    JOB_RUNNING,
    JOB_SUCCESS,
    JOB_UNRUNNABLE,
    USER,
    BranchInfo,
    CommitInfo,
    CommitRef,
    DatumInfo,
    FileChange,
    FileInfo,
    JobInfo,
    PathCommit,
    PipelineInfo,
    RepoInfo,
)
from .layout import PACHYDERM_PROJECT, PLACEHOLDER_IMAGE, SPEC_FILE, SPEC_SUFFIX
from .refs import COMMIT_ID, NAME_CHARS, normalize_path

log = logging.getLogger(__name__)

PACHD_ADDRESS_ENV = "PACHD_ADDRESS"
# What Kubernetes sets in every pod of pachd's namespace for the pachd-peer service, and what
# pachyderm-sdk's ``Client.new_in_cluster`` reads (constants.PACHD_SERVICE_HOST_ENV/_PORT_ENV).
PEER_HOST_ENV = sdk_constants.PACHD_SERVICE_HOST_ENV  # PACHD_PEER_SERVICE_HOST
PEER_PORT_ENV = sdk_constants.PACHD_SERVICE_PORT_ENV  # PACHD_PEER_SERVICE_PORT
CONNECT_TIMEOUT = 4.0  # seconds to reach pachd before giving up
PROJECT = PACHYDERM_PROJECT
CHUNK = 4 * 1024 * 1024  # bytes per ModifyFile message (pachd's limit is 20 MiB)

_JOB_STATES = {
    pps.JobState.JOB_CREATED: JOB_CREATED,
    pps.JobState.JOB_STARTING: JOB_CREATED,
    pps.JobState.JOB_RUNNING: JOB_RUNNING,
    pps.JobState.JOB_EGRESSING: JOB_RUNNING,
    pps.JobState.JOB_FINISHING: JOB_RUNNING,
    pps.JobState.JOB_SUCCESS: JOB_SUCCESS,
    pps.JobState.JOB_FAILURE: JOB_FAILURE,
    pps.JobState.JOB_KILLED: JOB_KILLED,
    pps.JobState.JOB_UNRUNNABLE: JOB_UNRUNNABLE,
}
_DATUM_STATES = {
    pps.DatumState.SUCCESS: "success",
    pps.DatumState.SKIPPED: "skipped",
    pps.DatumState.FAILED: "failed",
    pps.DatumState.RECOVERED: "recovered",
    pps.DatumState.STARTING: "starting",
}
_PAUSED = {pps.PipelineState.PIPELINE_PAUSED}
_FAILED = {pps.PipelineState.PIPELINE_FAILURE, pps.PipelineState.PIPELINE_CRASHING}


# -- where pachd is, and what it can do ------------------------------------------------------


@dataclass(frozen=True)
class ConnectionSource:
    """Where the address of pachd came from: ``address`` ($PACHD_ADDRESS), ``in-cluster``
    (a pipeline worker), ``config`` (a pachctl context file), or ``given`` (a client)."""

    kind: str
    address: str

    def describe(self) -> str:
        return {
            "address": f"${PACHD_ADDRESS_ENV}",
            "in-cluster": f"the worker's ${PEER_HOST_ENV}:${PEER_PORT_ENV}",
            "spout": f"the spout's {sdk_constants.CONFIG_PATH_SPOUT}",
            "config": f"the pachctl context in {self.address}",
        }.get(self.kind, "the client given")


def connection_source(environ: Mapping[str, str] | None = None) -> ConnectionSource:
    """How ``from_environment`` would reach pachd, without connecting: ``$PACHD_ADDRESS``
    first, then a worker's in-cluster environment, then the pachctl config."""
    env = os.environ if environ is None else environ
    address = env.get(PACHD_ADDRESS_ENV, "").strip()
    if address:
        return ConnectionSource("address", address)
    if sdk_constants.CONFIG_PATH_SPOUT.exists():
        return ConnectionSource("spout", str(sdk_constants.CONFIG_PATH_SPOUT))
    host = env.get(PEER_HOST_ENV, "").strip()
    if host:
        return ConnectionSource("in-cluster", f"{host}:{env.get(PEER_PORT_ENV, '').strip()}")
    return ConnectionSource("config", str(sdk_constants.DEFAULT_CONFIG))


def in_worker(environ: Mapping[str, str] | None = None) -> bool:
    """True inside a Pachyderm pipeline's pod: Kubernetes announces the pachd-peer service
    there (``$PACHD_PEER_SERVICE_HOST``), and a spout has its pachctl config mounted."""
    env = os.environ if environ is None else environ
    return bool(env.get(PEER_HOST_ENV, "").strip()) or sdk_constants.CONFIG_PATH_SPOUT.exists()


@dataclass(frozen=True)
class Feature:
    since: tuple[int, int]
    needed_for: str


# The pachd APIs Tulip cannot do without, and the release that added each. ``check`` refuses
# a pachd below ``MIN_PACHD``; ``require`` refuses a feature before its call is sent.
FEATURES = {
    "CreatePipelineV2": Feature((2, 8), "creating and updating pipelines (tulip deploy)"),
    "EditMetadata": Feature((2, 10), "writing the audit verdict onto the data commit"),
}
MIN_PACHD = FEATURES["CreatePipelineV2"].since
NEWEST_TESTED = (2, 12)  # pachyderm-sdk 2.12's protocol, which the tests speak


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(str(n) for n in version)


def _display_address(client: Client, source: ConnectionSource) -> str:
    if source.kind == "address":
        return source.address
    scheme = "grpcs" if client.root_certs else "grpc"
    return f"{scheme}://{client.address}"


# -- names and values -------------------------------------------------------------------------


def pfs_repo(name: str) -> pfs.Repo:
    """Our repo name to Pachyderm's: ``P.spec`` is ``Repo(P, type="spec")``."""
    if name.endswith(SPEC_SUFFIX):
        return pfs.Repo(
            name=name[: -len(SPEC_SUFFIX)], type="spec", project=pfs.Project(name=PROJECT)
        )
    return pfs.Repo(name=name, type="user", project=pfs.Project(name=PROJECT))


def repo_name(repo: pfs.Repo) -> str:
    """Pachyderm's repo to our name (the inverse of ``pfs_repo``)."""
    kind = repo.type or "user"
    return repo.name if kind == "user" else f"{repo.name}.{kind}"


def _hidden(repo: pfs.Repo) -> bool:
    return (repo.type or "user") not in ("user", "spec")


def _commit(repo: str, commit_id: str) -> pfs.Commit:
    return pfs.Commit(repo=pfs_repo(repo), id=commit_id)


def _branch(repo: str, branch: str) -> pfs.Branch:
    return pfs.Branch(repo=pfs_repo(repo), name=branch)


def _file(repo: str, commit_id: str, path: str) -> pfs.File:
    return pfs.File(commit=_commit(repo, commit_id), path=path)


def _ts(value: datetime | None) -> float | None:
    """A protobuf timestamp; unset ones arrive as the epoch."""
    if value is None:
        return None
    ts = value.timestamp()
    return ts if ts > 0 else None


def _ref(c: pfs.Commit) -> CommitRef:
    branch = c.branch.name if c.branch is not None and c.branch.name else None
    return CommitRef(repo_name(c.repo), branch, c.id)


def _check_name(name: str, what: str) -> None:
    if not name or any(ch not in NAME_CHARS for ch in name) or name.endswith(SPEC_SUFFIX):
        raise InvalidPath(
            f"{what} name {name!r} is not allowed: use letters, digits, '_', '-' and '.', "
            f"not ending in {SPEC_SUFFIX!r}"
        )


# -- writing --------------------------------------------------------------------------------


class PachydermCommitWriter(CommitWriter):
    """Stages puts and deletes; ``start_commit`` streams them into its open Pachyderm commit
    in one ModifyFile call and finishes it, or drops the commit if anything fails."""

    def __init__(self, repo: str, branch: str, commit: pfs.Commit):
        self.repo = repo
        self.branch = branch
        self.commit = commit
        self.ops: list[tuple[str, str, bytes | Path | FileInfo | None]] = []
        self.metadata: dict[str, str] = {}

    @property
    def id(self) -> str:
        return self.commit.id

    def put_bytes(self, path: str, data: bytes) -> None:
        self.ops.append(("put", file_path(path), bytes(data)))

    def put_file(self, path: str, source: Path) -> None:
        source = Path(source)
        if source.is_symlink():
            raise InvalidPath(f"{source} is a symbolic link; put the file it points to instead")
        if not source.is_file():
            raise SourceChanged(f"no local file {source}; nothing was committed")
        self.ops.append(("put", file_path(path), source))

    def put_tree(self, path: str, source: Path, *, progress=None) -> int:
        count = 0
        for repo_path, readable in walk_tree(path, source):
            self.ops.append(("put", repo_path, readable))
            count += 1
            if progress is not None:
                try:
                    progress(readable.stat().st_size)
                except FileNotFoundError:
                    raise SourceChanged(
                        f"{readable} vanished during the put; nothing was committed"
                    ) from None
        return count

    def delete(self, path: str) -> None:
        self.ops.append(("delete", normalize_path(path), None))

    def copy(self, path: str, source: FileInfo) -> None:
        if source.type != "file":
            raise InvalidPath(f"{source.path} in {source.repo}@{source.commit} is not a file")
        self.ops.append(("copy", file_path(path), source))

    def set_metadata(self, metadata: dict[str, str]) -> None:
        self.metadata.update({str(k): str(v) for k, v in metadata.items()})

    def requests(self, failure: list[BaseException]) -> Iterator[pfs.ModifyFileRequest]:
        """The ModifyFile stream. A local file that vanishes stops the stream and is recorded
        in ``failure`` (an exception raised inside a request iterator would be lost)."""
        yield pfs.ModifyFileRequest(set_commit=self.commit)
        for op, path, payload in self.ops:
            yield pfs.ModifyFileRequest(delete_file=pfs.DeleteFile(path=path))
            if op == "delete":
                continue
            if isinstance(payload, FileInfo):  # CopyFile: pachd copies the content by reference
                src = _file(payload.repo, payload.commit, payload.path)
                yield pfs.ModifyFileRequest(copy_file=pfs.CopyFile(dst=path, src=src))
                continue
            yield pfs.ModifyFileRequest(add_file=pfs.AddFile(path=path, raw=b""))
            if isinstance(payload, bytes):
                for i in range(0, len(payload), CHUNK):
                    yield pfs.ModifyFileRequest(
                        add_file=pfs.AddFile(path=path, raw=payload[i : i + CHUNK])
                    )
                continue
            try:
                with open(payload, "rb") as fh:
                    while chunk := fh.read(CHUNK):
                        yield pfs.ModifyFileRequest(add_file=pfs.AddFile(path=path, raw=chunk))
            except OSError:
                failure.append(
                    SourceChanged(f"{payload} vanished during the put; nothing was committed")
                )
                return


# -- the backend ----------------------------------------------------------------------------


class PachydermBackend(Backend):
    """Repos, commits, files, pipelines and jobs of a Pachyderm 2.x cluster (project default)."""

    name = "pachyderm"

    def __init__(self, client: Client, *, address: str | None = None):
        self.client = client
        self.address = address or getattr(client, "address", "pachd")
        self.source = ConnectionSource("given", self.address)
        self.version: tuple[int, int, int] | None = None  # pachd's, once ``check`` ran
        self.version_text = "unknown"
        self._specs: dict[str, dict[str, bytes]] = {}  # pipeline -> spec commit id -> spec.json
        self._reasons: dict[tuple[str, str], str | None] = {}  # failed job -> stage's last line

    # -- connecting -------------------------------------------------------------------------
    @classmethod
    def from_environment(cls, *, connect_timeout: float = CONNECT_TIMEOUT) -> PachydermBackend:
        """Connect the way the environment says, and check pachd's version.

        In order: ``$PACHD_ADDRESS`` (e.g. grpc://localhost:30650); inside a pipeline worker,
        pachyderm-sdk's in-cluster client (``/pachctl/config.json`` in a spout, else the
        ``pachd-peer`` service that Kubernetes announces as ``$PACHD_PEER_SERVICE_HOST`` and
        ``_PORT``); else the active pachctl context. A cluster below ``MIN_PACHD`` is refused.
        """
        source = connection_source()
        try:
            if source.kind == "address":
                client = Client.from_pachd_address(source.address)
            elif source.kind == "in-cluster":
                if not os.environ.get(PEER_PORT_ENV, "").strip():
                    raise BackendUnavailable(
                        f"{PEER_HOST_ENV} is set but {PEER_PORT_ENV} is not: a pipeline worker "
                        "gets both from Kubernetes for the pachd-peer service; set both, or "
                        f"{PACHD_ADDRESS_ENV}"
                    )
                client = Client.new_in_cluster()
            else:
                config = Path(os.path.expanduser(str(source.address)))
                if not config.exists():
                    raise BackendUnavailable(
                        f"no Pachyderm cluster configured: set {PACHD_ADDRESS_ENV} "
                        "(e.g. grpc://localhost:30650) or create a pachctl context "
                        f"(`pachctl connect ...`, which writes {config}); inside a pipeline "
                        f"worker, {PEER_HOST_ENV} and {PEER_PORT_ENV} are used"
                    )
                client = Client.from_config(config)
        except ValueError as e:
            raise BackendUnavailable(
                f"bad Pachyderm address {source.address!r} (from {source.describe()}): {e}; "
                "use grpc://HOST:PORT or grpcs://HOST:PORT"
            ) from None
        backend = cls(client, address=_display_address(client, source))
        backend.source = source
        backend.check(timeout=connect_timeout)
        return backend

    def check(self, *, timeout: float = CONNECT_TIMEOUT) -> str:
        """pachd's version (``BackendUnavailable`` within ``timeout`` seconds if it does not
        answer); a pachd older than ``MIN_PACHD`` is ``UnsupportedCluster``."""
        from betterproto.lib.google.protobuf import Empty
        from pachyderm_sdk.api.version import Version

        creds = self.client.root_certs
        target = self.client.address
        channel = (
            grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=creds))
            if creds
            else grpc.insecure_channel(target)
        )
        try:
            call = channel.unary_unary(
                "/versionpb_v2.API/GetVersion",
                request_serializer=Empty.SerializeToString,
                response_deserializer=Version.FromString,
            )
            v = call(Empty(), timeout=timeout)
        except grpc.RpcError as e:
            raise BackendUnavailable(
                f"cannot reach pachd at {self.address} ({self.source.describe()}) within "
                f"{timeout:g} s ({e.code().name}: {e.details()}); is the cluster up and "
                f"port-forwarded (`pachctl port-forward`)? Set {PACHD_ADDRESS_ENV} to point elsewhere"
            ) from None
        finally:
            channel.close()
        self.version = (v.major, v.minor, v.micro)
        self.version_text = f"{v.major}.{v.minor}.{v.micro}{v.additional}"
        if not self._development_build and self.version[:2] < MIN_PACHD:
            raise UnsupportedCluster(
                f"pachd {self.version_text} at {self.address} is older than Tulip supports "
                f"(pachd {_dotted(MIN_PACHD)} or newer: {FEATURES['CreatePipelineV2'].needed_for} "
                f"needs CreatePipelineV2, added in pachd {_dotted(MIN_PACHD)}); upgrade the cluster"
            )
        return self.version_text

    @property
    def _development_build(self) -> bool:
        """pachd built from source reports 0.0.0: nothing to compare, so nothing is refused."""
        return self.version is not None and self.version[0] == 0

    def require(self, feature: str) -> None:
        """Refuse, before sending anything, a call this pachd does not have."""
        floor = FEATURES[feature]
        if self.version is None:
            self.check()
        if self._development_build or self.version[:2] >= floor.since:
            return
        raise UnsupportedCluster(
            f"{floor.needed_for} needs {feature}, which pachd {_dotted(floor.since)} added; "
            f"pachd at {self.address} is {self.version_text}: upgrade the cluster to "
            f"{_dotted(floor.since)} or newer"
        )

    def close(self) -> None:
        channel = getattr(self.client, "_channel", None)
        if channel is not None and hasattr(channel, "close"):
            channel.close()

    def __repr__(self) -> str:
        return f"PachydermBackend({self.address!r})"

    # -- errors -----------------------------------------------------------------------------
    @contextmanager
    def _rpc(self, what: str, **ctx: str | None) -> Iterator[None]:
        """Turn gRPC failures into TulipErrors that name the object and the way out."""
        try:
            yield
        except grpc.RpcError as e:
            raise self._translate(e, what, ctx) from None
        except ConnectionError as e:  # the SDK's interceptor rewrites "failed to connect"
            raise BackendUnavailable(
                f"lost the Pachyderm cluster at {self.address} during {what}: {e}".strip()
            ) from None

    def _translate(self, e: grpc.RpcError, what: str, ctx: dict) -> TulipError:
        code = e.code() if hasattr(e, "code") else None
        details = (e.details() if hasattr(e, "details") else str(e)) or ""
        low = details.lower()
        repo, branch, commit, path = (
            ctx.get("repo"),
            ctx.get("branch"),
            ctx.get("commit"),
            ctx.get("path"),
        )
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return BackendUnavailable(
                f"Pachyderm at {self.address} did not answer {what}: {details}"
            )
        if "not found" in low or code == grpc.StatusCode.NOT_FOUND:
            noun = _not_found_noun(low)
            if noun == "repo":
                if repo is None:  # the repo pachd could not find, from its message
                    m = re.search(r"repo (?:[\w-]+/)?([\w.\-]+) not found", details)
                    repo = m.group(1) if m else "?"
                return RepoNotFound(
                    f"no repo {repo!r} on Pachyderm at {self.address}; repos: {self._names_or_none()}"
                )
            if noun == "branch":
                return BranchNotFound(
                    f"no branch {branch!r} in {repo}; branches: {self._branches_or_none(repo)}"
                )
            if noun == "file":
                return FileNotFound(f"no file or directory {path} in {repo}@{commit}")
            if noun == "pipeline":
                return PipelineNotFound(
                    f"no pipeline {ctx.get('pipeline')!r}; pipelines: {self._pipelines_or_none()}"
                )
            if noun == "job":
                return JobNotFound(
                    f"no job {ctx.get('pipeline')}@{ctx.get('job')}; "
                    f"`tulip list job -p {ctx.get('pipeline')}` shows them"
                )
            if noun == "commitset":
                return CommitNotFound(f"no commit set {commit}")
            return CommitNotFound(
                f"no commit {commit} in {repo}; `tulip list commit {repo}` shows them"
            )
        if code == grpc.StatusCode.ALREADY_EXISTS:
            if low.startswith("pipeline"):
                return InvalidSpec(
                    f"pipeline {ctx.get('pipeline')} already exists; use `tulip update pipeline -f SPEC` to change it"
                )
            return RepoExists(f"repo {repo!r} already exists")
        if "invalid" in low and "path" in low:
            return InvalidPath(f"Pachyderm refused a path in {repo}: {details}")
        if any(
            s in low
            for s in (
                "output branch",
                "has children",
                "subvenan",
                "already finished",
                "cannot delete",
                "cannot squash",
                "cannot drop",
                "updated a pipeline",
            )
        ):
            return CommitConflict(f"Pachyderm refused {what}: {details}")
        if code == grpc.StatusCode.INVALID_ARGUMENT and ctx.get("pipeline"):
            return InvalidSpec(f"Pachyderm refused the spec of {ctx.get('pipeline')}: {details}")
        return TulipError(f"Pachyderm refused {what} ({code.name if code else 'error'}): {details}")

    def _names_or_none(self) -> str:
        try:
            return ", ".join(sorted(r.name for r in self.list_repos())) or "(none yet)"
        except TulipError:
            return "(could not list them)"

    def _branches_or_none(self, repo: str | None) -> str:
        try:
            return ", ".join(b.name for b in self.list_branches(repo or "")) or "(none)"
        except TulipError:
            return "(none)"

    def _pipelines_or_none(self) -> str:
        try:
            return ", ".join(sorted(p.name for p in self.list_pipelines())) or "(none yet)"
        except TulipError:
            return "(could not list them)"

    # -- repos and branches -----------------------------------------------------------------
    def create_repo(self, name: str, *, description: str = "") -> RepoInfo:
        _check_name(name, "repo")
        with self._rpc(f"create repo {name}", repo=name):
            self.client.pfs.create_repo(repo=pfs_repo(name), description=description)
        return self.inspect_repo(name)

    def list_repos(self, *, include_specs: bool = False) -> list[RepoInfo]:
        with self._rpc("list repo"):
            infos = list(self.client.pfs.list_repo(type="" if include_specs else "user"))
            pipelines = {p.pipeline.name for p in self.client.pps.list_pipeline()}
        repos = [self._repo_info(r, pipelines) for r in infos if not _hidden(r.repo)]
        return sorted(repos, key=lambda r: -r.created)

    def inspect_repo(self, name: str) -> RepoInfo:
        with self._rpc(f"inspect repo {name}", repo=name):
            info = self.client.pfs.inspect_repo(repo=pfs_repo(name))
        pipelines = set()
        if not name.endswith(SPEC_SUFFIX):
            with self._rpc(f"inspect repo {name}", repo=name):
                pipelines = (
                    {name} if self.client.pps.pipeline_exists(pps.Pipeline(name=name)) else set()
                )
        return self._repo_info(info, pipelines)

    def _repo_info(self, r: pfs.RepoInfo, pipelines: set[str]) -> RepoInfo:
        kind = r.repo.type or "user"
        size = (
            r.details.size_bytes
            if r.details is not None and r.details.size_bytes
            else r.size_bytes_upper_bound
        )
        return RepoInfo(
            name=repo_name(r.repo),
            type=kind,
            created=_ts(r.created) or 0.0,
            description=r.description,
            size_bytes=size,
            branches=sorted(b.name for b in r.branches),
            pipeline=r.repo.name if (kind == "spec" or r.repo.name in pipelines) else None,
        )

    def delete_repo(self, name: str, *, force: bool = False) -> None:
        if not force and not name.endswith(SPEC_SUFFIX):
            with self._rpc(f"delete repo {name}", repo=name):
                if self.client.pps.pipeline_exists(pps.Pipeline(name=name)):
                    raise CommitConflict(
                        f"repo {name!r} is the output of pipeline {name}; "
                        f"delete the pipeline instead: tulip delete pipeline {name}"
                    )
        with self._rpc(f"delete repo {name}", repo=name):
            self.client.pfs.inspect_repo(repo=pfs_repo(name))
            self.client.pfs.delete_repo(repo=pfs_repo(name), force=force)

    def list_branches(self, repo: str) -> list[BranchInfo]:
        with self._rpc(f"list branch {repo}", repo=repo):
            infos = list(self.client.pfs.list_branch(repo=pfs_repo(repo)))
        return sorted((self._branch_info(b) for b in infos), key=lambda b: b.name)

    def inspect_branch(self, repo: str, branch: str) -> BranchInfo:
        with self._rpc(f"inspect branch {repo}@{branch}", repo=repo, branch=branch):
            return self._branch_info(self.client.pfs.inspect_branch(branch=_branch(repo, branch)))

    def create_branch(self, repo: str, branch: str, *, head: str | None = None) -> BranchInfo:
        _check_name(branch, "branch")
        with self._rpc(f"create branch {repo}@{branch}", repo=repo, branch=branch, commit=head):
            self.client.pfs.create_branch(
                branch=_branch(repo, branch), head=_commit(repo, head) if head else None
            )
        return self.inspect_branch(repo, branch)

    def _branch_info(self, b: pfs.BranchInfo) -> BranchInfo:
        head = b.head.id if b.head is not None and b.head.id else None
        prov = sorted(
            (repo_name(p.repo), p.name) for p in b.direct_provenance if not _hidden(p.repo)
        )
        return BranchInfo(
            repo=repo_name(b.branch.repo), name=b.branch.name, head=head, provenance=prov
        )

    # -- commits ----------------------------------------------------------------------------
    @contextmanager
    def start_commit(
        self,
        repo: str,
        branch: str = "master",
        *,
        description: str = "",
        expect_head: str | None = None,
    ) -> Iterator[PachydermCommitWriter]:
        _check_name(branch, "branch")
        try:
            with self._rpc(f"start a commit in {repo}@{branch}", repo=repo, branch=branch):
                commit = self.client.pfs.start_commit(
                    branch=_branch(repo, branch), description=description
                )
        except CommitConflict as e:
            if "output branch" not in str(e):
                raise
            raise CommitConflict(
                f"repo {repo!r} is written by pipeline {repo}; put data in its input repos "
                f"instead ({e})"
            ) from None
        writer = PachydermCommitWriter(repo, branch, commit)
        try:
            if expect_head is not None:
                # pachd made the new commit the branch head at once, on top of the head it
                # found: that parent is the compare in the compare-and-set
                parent = self.inspect_commit(repo, commit.id).parent
                if parent != expect_head:
                    raise BranchMoved(
                        f"{repo}@{branch} moved: its head is {parent}, not {expect_head}; "
                        "nothing was committed"
                    )
            yield writer
            self._apply(writer)
        except BaseException:
            self._abandon(commit)
            raise

    def _apply(self, w: PachydermCommitWriter) -> None:
        ctx = {"repo": w.repo, "branch": w.branch, "commit": w.id}
        staged: set[str] = set()
        with self._rpc(f"write {w.repo}@{w.branch}", **ctx):
            for op, path, _ in w.ops:
                if op in ("put", "copy"):
                    staged.add(path)
                elif path not in staged and not any(
                    p.startswith(path.rstrip("/") + "/") for p in staged
                ):
                    try:
                        self.client.pfs.inspect_file(file=pfs.File(commit=w.commit, path=path))
                    except grpc.RpcError as e:
                        if e.code() == grpc.StatusCode.NOT_FOUND or "not found" in (
                            e.details() or ""
                        ):
                            raise FileNotFound(
                                f"no file or directory {path} in {w.repo}@{w.branch}; nothing was deleted"
                            ) from None
                        raise
            failure: list[BaseException] = []
            if w.ops:
                self.client.pfs.modify_file(w.requests(failure))
            if failure:
                raise failure[0]
            if w.metadata:  # on the open commit: it lands with the commit or is dropped with it
                picker = pfs.CommitPicker(
                    id=pfs.CommitPickerCommitByGlobalId(repo=pfs_repo(w.repo).as_picker(), id=w.id)
                )
                self.client.metadata.edit_metadata(
                    edits=[
                        mdapi.Edit(commit=picker, edit_key=mdapi.EditEditKey(key=k, value=v))
                        for k, v in w.metadata.items()
                    ]
                )
            self.client.pfs.finish_commit(commit=w.commit)

    def _abandon(self, commit: pfs.Commit) -> None:
        """Drop an unfinished commit and the downstream commits it caused, best effort."""
        try:
            self.client.pfs.drop_commit_set(commit_set=pfs.CommitSet(id=commit.id))
        except (grpc.RpcError, ConnectionError) as e:
            log.warning("could not drop abandoned commit %s: %s", commit.id, e)

    def _commit_info(self, ci: pfs.CommitInfo) -> CommitInfo:
        c = ci.commit
        size = (
            ci.details.size_bytes
            if ci.details is not None and ci.details.size_bytes
            else ci.size_bytes_upper_bound
        )
        parent = (
            ci.parent_commit.id if ci.parent_commit is not None and ci.parent_commit.id else None
        )
        prov = sorted(
            (_ref(p) for p in ci.direct_provenance if not _hidden(p.repo)),
            key=lambda r: (r.repo, r.id),
        )
        kind = ci.origin.kind if ci.origin is not None else pfs.OriginKind.AUTO
        if c.repo.type == "spec":
            blob = self._spec_blob(repo_name(c.repo), c.id)
            size = len(blob) if blob is not None else size
        error = ci.error or None
        if error and kind != pfs.OriginKind.USER and not _hidden(c.repo):
            error = self._stage_reason(c.repo.name, c.id, error)
        return CommitInfo(
            repo=repo_name(c.repo),
            branch=c.branch.name if c.branch is not None and c.branch.name else None,
            id=c.id,
            origin=USER if kind == pfs.OriginKind.USER else AUTO,
            parent=parent,
            started=_ts(ci.started) or 0.0,
            finished=_ts(ci.finished),
            size_bytes=size,
            description=ci.description,
            error=error,
            direct_provenance=prov,
            metadata=dict(ci.metadata),
        )

    def inspect_commit(self, repo: str, commit_id: str) -> CommitInfo:
        with self._rpc(f"inspect commit {repo}@{commit_id}", repo=repo, commit=commit_id):
            return self._commit_info(
                self.client.pfs.inspect_commit(commit=_commit(repo, commit_id))
            )

    def list_commits(
        self, repo: str, branch: str | None = None, *, limit: int | None = None
    ) -> list[CommitInfo]:
        ctx = {"repo": repo, "branch": branch}
        with self._rpc(f"list commit {repo}", **ctx):
            if branch is None:
                infos = self.client.pfs.list_commit(repo=pfs_repo(repo), number=limit or 0)
            else:
                self.client.pfs.inspect_branch(branch=_branch(repo, branch))
                infos = self.client.pfs.list_commit(
                    repo=pfs_repo(repo),
                    to=pfs.Commit(repo=pfs_repo(repo), branch=_branch(repo, branch)),
                    number=limit or 0,
                )
            return [self._commit_info(ci) for ci in infos]

    def _set_members(self, commit_id: str, infos: Iterable[pfs.CommitInfo]) -> list[CommitInfo]:
        """The set's own commits (not the older ones it depends on, which pachd includes),
        upstream first; ties in repo-name order, as the embedded store orders them."""
        members = {
            repo_name(ci.commit.repo): self._commit_info(ci)
            for ci in infos
            if ci.commit.id == commit_id and not _hidden(ci.commit.repo)
        }
        if not members:
            raise CommitNotFound(f"no commit set {commit_id}")
        needs = {
            name: {p.repo for p in c.direct_provenance if p.id == commit_id and p.repo in members}
            for name, c in members.items()
        }
        ordered: list[CommitInfo] = []
        while needs:
            ready = sorted(n for n, deps in needs.items() if not deps) or sorted(needs)[:1]
            name = ready[0]
            ordered.append(members[name])
            del needs[name]
            for deps in needs.values():
                deps.discard(name)
        return ordered

    def commit_set(self, commit_id: str) -> list[CommitInfo]:
        with self._rpc(f"inspect commit set {commit_id}", commit=commit_id):
            infos = list(self.client.pfs.inspect_commit_set(commit_set=pfs.CommitSet(id=commit_id)))
        return self._set_members(commit_id, infos)

    def wait_commit_set(self, commit_id: str, *, timeout: float | None = None) -> list[CommitInfo]:
        if timeout is None:
            with self._rpc(f"wait for commit set {commit_id}", commit=commit_id):
                infos = self.client.pfs.wait_commit_set(pfs.CommitSet(id=commit_id))
            return self._set_members(commit_id, infos)
        deadline = time.monotonic() + timeout
        while True:
            commits = self.commit_set(commit_id)
            if all(c.finished is not None for c in commits):
                return commits
            if time.monotonic() > deadline:
                pending = [f"{c.repo}@{c.id}" for c in commits if c.finished is None]
                raise TimeoutError(
                    f"commit set {commit_id} not finished after {timeout}s: {', '.join(pending)}"
                )
            time.sleep(0.25)

    def delete_commit(self, repo: str, commit_id: str) -> list[CommitRef]:
        commit = self.inspect_commit(repo, commit_id)
        if repo.endswith(SPEC_SUFFIX):
            raise CommitConflict(
                f"{repo}@{commit_id} is a pipeline spec; use `tulip delete pipeline`"
            )
        if commit.origin == AUTO:
            raise CommitConflict(
                f"{repo}@{commit_id} was made by a pipeline; delete the data commit that caused it"
            )
        members = self.commit_set(commit_id)
        with self._rpc(f"delete commit {repo}@{commit_id}", repo=repo, commit=commit_id):
            self.client.pfs.drop_commit_set(commit_set=pfs.CommitSet(id=commit_id))
        return [m.ref for m in reversed(members)]

    def subvenance(self, repo: str, commit_id: str) -> list[CommitRef]:
        with self._rpc(f"inspect commit {repo}@{commit_id}", repo=repo, commit=commit_id):
            ci = self.client.pfs.inspect_commit(commit=_commit(repo, commit_id))
        return [_ref(c) for c in ci.direct_subvenance if not _hidden(c.repo)]

    def provenance(self, commit: CommitInfo) -> list[CommitRef]:
        """One WalkCommitProvenance call, ordered as ``Backend.provenance`` orders its walk."""
        picker = pfs.CommitPicker(
            id=pfs.CommitPickerCommitByGlobalId(
                repo=pfs_repo(commit.repo).as_picker(), id=commit.id
            )
        )
        try:
            with self._rpc(
                f"walk the provenance of {commit.repo}@{commit.id}",
                repo=commit.repo,
                commit=commit.id,
            ):
                walked = list(self.client.pfs.walk_commit_provenance(start=[picker]))
        except TulipError:
            return super().provenance(commit)  # a pachd older than 2.8
        known = {(repo_name(ci.commit.repo), ci.commit.id): self._commit_info(ci) for ci in walked}
        seen: dict[tuple[str, str], CommitRef] = {}
        frontier = list(commit.direct_provenance)
        while frontier:
            ref = frontier.pop(0)
            key = (ref.repo, ref.id)
            if key in seen:
                continue
            seen[key] = ref
            if key in known:
                frontier.extend(known[key].direct_provenance)
        return list(seen.values())

    def set_commit_metadata(self, repo: str, commit_id: str, metadata: dict[str, str]) -> None:
        """Merge keys into a commit's metadata, where `pachctl inspect commit` shows them."""
        self.require("EditMetadata")
        picker = pfs.CommitPicker(
            id=pfs.CommitPickerCommitByGlobalId(repo=pfs_repo(repo).as_picker(), id=commit_id)
        )
        edits = [
            mdapi.Edit(commit=picker, edit_key=mdapi.EditEditKey(key=str(k), value=str(v)))
            for k, v in metadata.items()
        ]
        with self._rpc(f"edit the metadata of {repo}@{commit_id}", repo=repo, commit=commit_id):
            self.client.pfs.inspect_commit(commit=_commit(repo, commit_id))
            if edits:
                self.client.metadata.edit_metadata(edits=edits)

    # -- spec files (virtual) -----------------------------------------------------------------
    def _spec_blob(self, repo: str, commit_id: str) -> bytes | None:
        """``P.spec@<id>:/spec.json``, rendered as the embedded store writes it, or None."""
        pipeline = repo.removesuffix(SPEC_SUFFIX)
        blobs = self._specs.get(pipeline)
        if blobs is None or commit_id not in blobs:
            blobs = {}
            try:
                with self._rpc(f"list the versions of pipeline {pipeline}", pipeline=pipeline):
                    versions = list(
                        self.client.pps.list_pipeline(
                            pipeline=pps.Pipeline(name=pipeline), history=-1
                        )
                    )
            except TulipError:
                versions = []
            for pi in versions:
                if pi.spec_commit is not None and pi.spec_commit.id:
                    spec = self._pipeline_info(pi).spec
                    blobs[pi.spec_commit.id] = json.dumps(spec, indent=2, sort_keys=True).encode()
            self._specs[pipeline] = blobs
        return blobs.get(commit_id)

    def _spec_files(self, repo: str, commit_id: str, path: str) -> list[FileInfo]:
        """The virtual files of a spec commit at or under ``path``."""
        blob = self._spec_blob(repo, commit_id)
        if blob is None:
            self.inspect_commit(repo, commit_id)  # CommitNotFound if it is not there at all
            return []
        if path not in ("/", SPEC_FILE):
            return []
        digest = hashlib.sha256(blob).hexdigest()
        return [FileInfo(SPEC_FILE, "file", len(blob), digest, commit_id, repo)]

    # -- files ------------------------------------------------------------------------------
    def _file_info(
        self, repo: str, commit_id: str, fi: pfs.FileInfo, *, strip: bool = True
    ) -> FileInfo:
        is_dir = fi.file_type == pfs.FileType.DIR
        path = fi.file.path
        if is_dir and strip and path != "/":
            path = path.rstrip("/")
        return FileInfo(
            path=path,
            type="dir" if is_dir else "file",
            size=fi.size_bytes,
            hash=None if is_dir else fi.hash.hex(),
            commit=commit_id,
            repo=repo,
        )

    def walk_files(self, repo: str, commit_id: str, path: str = "/") -> Iterator[FileInfo]:
        path = normalize_path(path)
        if repo.endswith(SPEC_SUFFIX):
            yield from self._spec_files(repo, commit_id, path)
            return
        ctx = {"repo": repo, "commit": commit_id, "path": path}
        with self._rpc(f"walk {repo}@{commit_id}:{path}", **ctx):
            try:
                infos = list(self.client.pfs.walk_file(file=_file(repo, commit_id, path)))
            except grpc.RpcError as e:
                if "not found" in (e.details() or "").lower() and _not_found_noun(
                    (e.details() or "").lower()
                ) in ("file", None):
                    return  # no such path: nothing to walk, as in the embedded store
                raise
        for fi in infos:
            if fi.file_type == pfs.FileType.FILE:
                yield self._file_info(repo, commit_id, fi)

    def list_files(
        self, repo: str, commit_id: str, path: str = "/", *, recursive: bool = False
    ) -> list[FileInfo]:
        path = normalize_path(path)
        if recursive or repo.endswith(SPEC_SUFFIX):
            files = list(self.walk_files(repo, commit_id, path))
            if not files and path != "/":
                raise FileNotFound(f"no file or directory {path} in {repo}@{commit_id}")
            return files
        ctx = {"repo": repo, "commit": commit_id, "path": path}
        with self._rpc(f"list file {repo}@{commit_id}:{path}", **ctx):
            infos = list(self.client.pfs.list_file(file=_file(repo, commit_id, path)))
        if not infos and path != "/":
            raise FileNotFound(f"no file or directory {path} in {repo}@{commit_id}")
        out = []
        for fi in infos:
            f = self._file_info(repo, commit_id, fi, strip=False)
            out.append(f)
        return sorted(out, key=lambda f: f.path)

    def inspect_file(self, repo: str, commit_id: str, path: str) -> FileInfo:
        path = normalize_path(path)
        if repo.endswith(SPEC_SUFFIX):
            files = self._spec_files(repo, commit_id, path)
            if path == "/" and files:
                return FileInfo("/", "dir", files[0].size, None, commit_id, repo)
            if not files:
                raise FileNotFound(f"no file or directory {path} in {repo}@{commit_id}")
            return files[0]
        ctx = {"repo": repo, "commit": commit_id, "path": path}
        with self._rpc(f"inspect file {repo}@{commit_id}:{path}", **ctx):
            fi = self.client.pfs.inspect_file(file=_file(repo, commit_id, path))
        info = self._file_info(repo, commit_id, fi)
        return FileInfo(path, info.type, info.size, info.hash, commit_id, repo)

    def get_file(self, repo: str, commit_id: str, path: str) -> bytes:
        path = normalize_path(path)
        if repo.endswith(SPEC_SUFFIX):
            if self.inspect_file(repo, commit_id, path).type != "file":
                raise FileNotFound(f"{path} in {repo}@{commit_id} is a directory")
            return self._spec_blob(repo, commit_id) or b""
        ctx = {"repo": repo, "commit": commit_id, "path": path}
        try:
            with self._rpc(f"get file {repo}@{commit_id}:{path}", **ctx):
                return b"".join(
                    chunk.value
                    for chunk in self.client.pfs.get_file(file=_file(repo, commit_id, path))
                )
        except FileNotFound:
            raise
        except TulipError as e:  # pachd: "cannot get directory or non-regular file"
            if "directory" in str(e) or "multiple files" in str(e):
                raise FileNotFound(
                    f"{path} in {repo}@{commit_id} is a directory; use `tulip get file -o DIR` or list file"
                ) from None
            raise

    def copy_out(self, repo: str, commit_id: str, path: str, dest: Path) -> list[Path]:
        path = normalize_path(path)
        files = list(self.walk_files(repo, commit_id, path))
        if not files:
            raise FileNotFound(f"no file or directory {path} in {repo}@{commit_id}")
        dest = Path(dest)
        if len(files) == 1 and files[0].path == path:
            target = dest / Path(path).name if dest.is_dir() else dest
            _write(target, self.get_file(repo, commit_id, path))
            return [target]
        base = "/" if path == "/" else path + "/"
        written = []
        for f in files:
            target = dest / f.path[len(base) :]
            _write(target, self.get_file(repo, commit_id, f.path))
            written.append(target)
        return written

    def diff_files(
        self,
        repo: str,
        new_commit: str,
        old_commit: str | None,
        path: str = "/",
        *,
        old_repo: str | None = None,
        old_path: str | None = None,
    ) -> list[FileChange]:
        path = normalize_path(path)
        old_repo = old_repo or repo
        old_path = normalize_path(old_path) if old_path else path
        if old_commit is None or old_path != path or SPEC_SUFFIX in (repo[-5:], old_repo[-5:]):
            return self._diff_by_walking(repo, new_commit, old_commit, path, old_repo, old_path)
        return self._diff(repo, new_commit, path, old_repo=old_repo, old_commit=old_commit)

    def _diff(
        self,
        repo: str,
        new_commit: str,
        path: str,
        *,
        old_repo: str | None = None,
        old_commit: str | None = None,
    ) -> list[FileChange]:
        """One DiffFile call; with no old commit, pachd diffs against the parent."""
        old_file = _file(old_repo or repo, old_commit, path) if old_commit else None
        ctx = {"repo": repo, "commit": new_commit, "path": path}
        with self._rpc(f"diff file {repo}@{new_commit}:{path}", **ctx):
            pairs = list(
                self.client.pfs.diff_file(new_file=_file(repo, new_commit, path), old_file=old_file)
            )
        changes = []
        for pair in pairs:
            n = pair.new_file if pair.new_file is not None and pair.new_file.file.path else None
            o = pair.old_file if pair.old_file is not None and pair.old_file.file.path else None
            if (n is not None and n.file_type == pfs.FileType.DIR) or (
                o is not None and o.file_type == pfs.FileType.DIR
            ):
                continue
            if n is not None and o is None:
                changes.append(
                    FileChange(n.file.path, "added", None, n.hash.hex(), None, n.size_bytes)
                )
            elif o is not None and n is None:
                changes.append(
                    FileChange(o.file.path, "deleted", o.hash.hex(), None, o.size_bytes, None)
                )
            elif n is not None and o is not None and n.hash != o.hash:
                changes.append(
                    FileChange(
                        n.file.path,
                        "modified",
                        o.hash.hex(),
                        n.hash.hex(),
                        o.size_bytes,
                        n.size_bytes,
                    )
                )
        return sorted(changes, key=lambda c: c.path)

    def _diff_by_walking(
        self,
        repo: str,
        new_commit: str,
        old_commit: str | None,
        path: str,
        old_repo: str,
        old_path: str,
    ) -> list[FileChange]:
        def rel(p: str, base: str) -> str:
            return p[len(base) :] if base != "/" else p

        new = {rel(f.path, path): f for f in self.walk_files(repo, new_commit, path)}
        old = {}
        if old_commit is not None:
            old = {
                rel(f.path, old_path): f for f in self.walk_files(old_repo, old_commit, old_path)
            }
        prefix = "" if path == "/" else path
        changes = []
        for r in sorted(set(new) | set(old)):
            n, o = new.get(r), old.get(r)
            shown = prefix + r if r else path
            if n and not o:
                changes.append(FileChange(shown, "added", None, n.hash, None, n.size))
            elif o and not n:
                changes.append(FileChange(shown, "deleted", o.hash, None, o.size, None))
            elif n.hash != o.hash:
                changes.append(FileChange(shown, "modified", o.hash, n.hash, o.size, n.size))
        return changes

    def _chain(self, repo: str, start: str) -> list[CommitInfo]:
        """A commit and its ancestors, newest first (ListCommit from ``start`` down)."""
        with self._rpc(f"list commit {repo}", repo=repo, commit=start):
            infos = self.client.pfs.list_commit(repo=pfs_repo(repo), to=_commit(repo, start))
            return [self._commit_info(ci) for ci in infos]

    def find_commits(self, repo: str, branch_or_commit: str, path: str) -> list[PathCommit]:
        """No ``list file --history`` in 2.x: walk the parents, one DiffFile each."""
        path = normalize_path(path)
        if COMMIT_ID.match(branch_or_commit):
            start = self.inspect_commit(repo, branch_or_commit).id
        else:
            head = self.inspect_branch(repo, branch_or_commit).head
            if head is None:
                return []
            start = head
        current = {f.path: f.hash for f in self.walk_files(repo, start, path)}
        result: list[PathCommit] = []
        for commit in self._chain(repo, start):
            if repo.endswith(SPEC_SUFFIX):
                changes = self._diff_by_walking(repo, commit.id, commit.parent, path, repo, path)
            else:
                changes = self._diff(repo, commit.id, path)
            if not changes:
                continue
            before = dict(current)
            for ch in changes:
                if ch.change == "added":
                    before.pop(ch.path, None)
                else:
                    before[ch.path] = ch.old_hash
            if not before:
                kind = "added"
            elif not current:
                kind = "deleted"
            else:
                kind = "modified"
            result.append(
                PathCommit(commit=commit, change=kind, files=sorted(ch.path for ch in changes))
            )
            current = before
        return result

    def introduced_by(self, repo: str, commit_id: str, paths: Iterable[str]) -> dict[str, str]:
        """For each path present in ``commit_id``, the newest commit whose diff touched it."""
        if repo.endswith(SPEC_SUFFIX):
            return super().introduced_by(repo, commit_id, paths)
        wanted = {normalize_path(p) for p in paths}
        present = {f.path for f in self.walk_files(repo, commit_id)}
        pending = wanted & present
        result: dict[str, str] = {}
        chain = self._chain(repo, commit_id)
        for commit in chain:
            if not pending:
                break
            for ch in self._diff(repo, commit.id, "/"):
                if ch.path in pending:
                    result[ch.path] = commit.id
                    pending.discard(ch.path)
        for p in pending:
            result[p] = chain[-1].id
        return result

    # -- pipelines ----------------------------------------------------------------------------
    def create_pipeline(
        self, spec: dict, *, update: bool = False, reprocess: bool = False, dry_run: bool = False
    ) -> PipelineInfo:
        """Validate with our schema and checks (cluster semantics), then CreatePipelineV2."""
        spec = specmod.normalize(spec, local=False)
        if (spec.get("transform") or {}).get("image") == PLACEHOLDER_IMAGE:
            raise InvalidSpec(
                f"spec field 'transform.image' is {PLACEHOLDER_IMAGE}, the placeholder of the "
                "bundled specs, which no registry holds (the workers would never start): build "
                "the Dockerfile, push it, and run `tulip deploy --image REGISTRY/tulip:TAG`"
            )
        self.require("CreatePipelineV2")
        name = specmod.spec_name(spec)
        inputs = [(i.repo, i.branch) for i in specmod.pfs_inputs(spec.get("input") or {})]
        if any(repo == name for repo, _ in inputs):
            from .errors import PipelineCycle

            raise PipelineCycle(f"pipeline {name} lists its own output repo {name!r} as an input")
        existing = None
        if update or dry_run:
            try:
                existing = self.inspect_pipeline(name)
            except PipelineNotFound:
                if update:
                    raise PipelineNotFound(
                        f"no pipeline {name} to update; use `tulip create pipeline`"
                    ) from None
        try:
            with self._rpc(f"create pipeline {name}", pipeline=name):
                self.client.pps.create_pipeline_v2(
                    create_pipeline_request_json=json.dumps(spec),
                    dry_run=dry_run,
                    update=update,
                    reprocess=reprocess,
                )
        except RepoNotFound:
            missing = [r for r, _ in inputs if not self._repo_exists(r)]
            raise InvalidSpec(
                f"spec field 'input' names repo {missing[0] if missing else '?'!r}, which does not exist; "
                f"create it first (tulip create repo {missing[0] if missing else 'NAME'}); repos: {self._names_or_none()}"
            ) from None
        self._specs.pop(name, None)
        if dry_run:
            now = time.time()
            return PipelineInfo(
                name=name,
                spec=spec,
                version=(existing.version + 1) if existing else 1,
                spec_commit="",
                state="dry-run",
                created=now,
                updated=now,
                inputs=inputs,
                description=spec.get("description") or "",
            )
        return self.inspect_pipeline(name)

    def _repo_exists(self, name: str) -> bool:
        try:
            return self.client.pfs.repo_exists(pfs_repo(name))
        except grpc.RpcError:
            return False

    def _pipeline_info(self, pi: pps.PipelineInfo) -> PipelineInfo:
        details = pi.details
        spec: dict = {}
        if pi.user_spec_json:
            try:
                spec = specmod.normalize(json.loads(pi.user_spec_json), local=False)
            except (InvalidSpec, ValueError):
                spec = json.loads(pi.user_spec_json)
        elif details is not None:
            spec = {
                "pipeline": {"name": pi.pipeline.name},
                **pps.CreatePipelineRequest(
                    transform=details.transform,
                    input=details.input,
                    description=details.description,
                ).to_dict(),
            }
        state = "running"
        if pi.stopped or pi.state in _PAUSED:
            state = "paused"
        elif pi.state in _FAILED:
            state = "failure"
        created = _ts(details.created_at) if details is not None else None
        updated = _ts(details.updated_at) if details is not None else None
        return PipelineInfo(
            name=pi.pipeline.name,
            spec=spec,
            version=pi.version,
            spec_commit=pi.spec_commit.id if pi.spec_commit is not None else "",
            state=state,
            created=created or 0.0,
            updated=updated or created or 0.0,
            inputs=[(i.repo, i.branch) for i in specmod.pfs_inputs(spec.get("input") or {})],
            description=(details.description if details is not None else "")
            or spec.get("description")
            or "",
        )

    def list_pipelines(self) -> list[PipelineInfo]:
        with self._rpc("list pipeline"):
            infos = list(self.client.pps.list_pipeline())
        return sorted((self._pipeline_info(p) for p in infos), key=lambda p: p.created)

    def inspect_pipeline(self, name: str) -> PipelineInfo:
        with self._rpc(f"inspect pipeline {name}", pipeline=name):
            return self._pipeline_info(
                self.client.pps.inspect_pipeline(pipeline=pps.Pipeline(name=name), details=True)
            )

    def delete_pipeline(self, name: str) -> None:
        self.inspect_pipeline(name)
        with self._rpc(f"delete pipeline {name}", pipeline=name):
            self.client.pps.delete_pipeline(pipeline=pps.Pipeline(name=name))
        self._specs.pop(name, None)

    def set_pipeline_state(self, name: str, state: str) -> None:
        """ "paused" stops the pipeline (no new jobs), "running" starts it again."""
        with self._rpc(
            f"{'stop' if state == 'paused' else 'start'} pipeline {name}", pipeline=name
        ):
            if state == "paused":
                self.client.pps.stop_pipeline(pipeline=pps.Pipeline(name=name))
            else:
                self.client.pps.start_pipeline(pipeline=pps.Pipeline(name=name))

    # -- jobs, datums, logs ---------------------------------------------------------------------
    def _stage_reason(self, pipeline: str, job_id: str, pachd_reason: str) -> str:
        """pachd's reason for a failed job, followed by the last line the stage printed (its
        stderr, from the job's logs): Tulip's stages end with a sentence saying why, and the
        embedded engine reports that line too ("gate blocked: ..." is what blame looks for)."""
        key = (pipeline, job_id)
        if key not in self._reasons:
            line = None
            try:
                msgs = list(
                    self.client.pps.get_logs(
                        pipeline=pps.Pipeline(name=pipeline),
                        job=pps.Job(pipeline=pps.Pipeline(name=pipeline), id=job_id),
                    )
                )
                users = [m for m in msgs if m.user] or msgs
                lines = [ln.strip() for m in users for ln in m.message.splitlines() if ln.strip()]
                line = lines[-1] if lines else None
            except (grpc.RpcError, ConnectionError) as e:  # no log backend: keep pachd's reason
                log.debug("no logs for %s@%s: %s", pipeline, job_id, e)
            self._reasons[key] = line
        line = self._reasons[key]
        if not line or line in pachd_reason:
            return pachd_reason
        return f"{pachd_reason}: {line}"

    def _job_info(self, j: pps.JobInfo) -> JobInfo:
        out = j.output_commit.id if j.output_commit is not None and j.output_commit.id else j.job.id
        reason = j.reason or None
        if reason and j.state == pps.JobState.JOB_FAILURE:
            reason = self._stage_reason(j.job.pipeline.name, j.job.id, reason)
        return JobInfo(
            pipeline=j.job.pipeline.name,
            id=j.job.id,
            state=_JOB_STATES.get(j.state, JOB_CREATED),
            reason=reason,
            created=_ts(j.created) or 0.0,
            started=_ts(j.started),
            finished=_ts(j.finished),
            data_processed=j.data_processed,
            data_skipped=j.data_skipped,
            data_failed=j.data_failed,
            data_recovered=j.data_recovered,
            data_total=j.data_total,
            spec_version=j.pipeline_version,
            output_commit=out,
        )

    def list_jobs(self, pipeline: str | None = None, *, limit: int | None = None) -> list[JobInfo]:
        if pipeline:
            self.inspect_pipeline(pipeline)
        with self._rpc("list job", pipeline=pipeline):
            infos = list(
                self.client.pps.list_job(
                    pipeline=pps.Pipeline(name=pipeline) if pipeline else None,
                    history=-1,
                    number=limit or 0,
                )
            )
        jobs = sorted((self._job_info(j) for j in infos), key=lambda j: -j.created)
        return jobs[:limit] if limit else jobs

    def inspect_job(self, pipeline: str, job_id: str) -> JobInfo:
        with self._rpc(f"inspect job {pipeline}@{job_id}", pipeline=pipeline, job=job_id):
            return self._job_info(
                self.client.pps.inspect_job(
                    job=pps.Job(pipeline=pps.Pipeline(name=pipeline), id=job_id)
                )
            )

    def list_datums(self, pipeline: str, job_id: str) -> list[DatumInfo]:
        self.inspect_job(pipeline, job_id)
        job = pps.Job(pipeline=pps.Pipeline(name=pipeline), id=job_id)
        with self._rpc(f"list datum {pipeline}@{job_id}", pipeline=pipeline, job=job_id):
            infos = list(self.client.pps.list_datum(job=job))
        return sorted(
            (
                DatumInfo(
                    pipeline=pipeline,
                    job=job_id,
                    id=d.datum.id,
                    state=_DATUM_STATES.get(d.state, "unknown"),
                    files=sorted(fi.file.path for fi in d.data),
                )
                for d in infos
            ),
            key=lambda d: d.id,
        )

    def logs(self, pipeline: str, job_id: str | None = None, datum_id: str | None = None) -> str:
        self.inspect_pipeline(pipeline)
        job = pps.Job(pipeline=pps.Pipeline(name=pipeline), id=job_id) if job_id else None
        datum = pps.Datum(job=job, id=datum_id) if (job is not None and datum_id) else None
        with self._rpc(f"get logs of {pipeline}", pipeline=pipeline, job=job_id):
            msgs = list(
                self.client.pps.get_logs(pipeline=pps.Pipeline(name=pipeline), job=job, datum=datum)
            )
        return "".join(m.message if m.message.endswith("\n") else m.message + "\n" for m in msgs)


def _not_found_noun(low: str) -> str | None:
    """Which object a pachd 'not found' message is about (pfs/pps error formats)."""
    if low.startswith("commit/") or " commit/" in low:
        return "file"  # WalkFile's pacherr.ErrNotExist: commit/<id>/<path>
    if "commitset" in low:
        return "commitset"
    first, where = None, len(low) + 1
    for noun in ("file", "branch", "commit", "repo", "pipeline", "job", "datum"):
        i = low.find(noun)
        if i != -1 and i < where:
            first, where = noun, i
    return first


def _write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
