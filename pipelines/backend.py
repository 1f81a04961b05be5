"""The one interface through which the CLI, the auditor, reports and export reach versioned data.

Two implementations: ``pipelines.embedded.store.EmbeddedStore`` (SQLite plus
content-addressed files, the default) and ``pipelines.pachyderm.PachydermBackend`` (a real
cluster through ``pachyderm-sdk``); ``pipelines.connect.open_backend`` picks one. Nothing
above this module may depend on which one it holds.

Writes go through ``start_commit``: changes are staged, then land in one atomic step when
the context exits without an exception, and are dropped otherwise. A writer can also copy a
stored file without reading it (a move is a copy and a delete), stage metadata that lands with
the commit, and be told the head it must land on (``expect_head``: a compare-and-set, so a fix
meant for one commit never lands on a branch that moved meanwhile).

Abilities only some backends have are declared here too, as abstract classes a backend
inherits (``Checkable``, ``Collectable``, ``LocalBlobs``, ``LocalServices``): callers ask
``isinstance`` (or :func:`require`), never probe for methods.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TypeVar

from .errors import (
    AmbiguousReference,
    BranchNotFound,
    CommitNotFound,
    InvalidPath,
    NotApplicable,
    SourceChanged,
)
from .info import (
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
from .refs import Ref, normalize_path, parse_ref

BACKEND_ENV = "TULIP_BACKEND"
ROOT_ENV = "TULIP_ROOT"


def file_path(path: str) -> str:
    """The canonical repo path of a file; the repo root is not one."""
    p = normalize_path(path)
    if p == "/":
        raise InvalidPath("a file needs a name; '/' is the repo root")
    return p


def _require_inside(link: Path, root: Path) -> Path:
    target = link.resolve()
    if target != root and root not in target.parents:
        raise InvalidPath(
            f"{link} is a symbolic link to {target}, outside the tree being put ({root}); "
            "copy the file in instead"
        )
    return target


def walk_tree(path: str, source: Path) -> Iterator[tuple[str, Path]]:
    """(repo path, local file to read) for every file under ``source``, in a stable order.

    Both backends put folders through this, so they refuse the same things before anything is
    committed: links that leave the tree, sockets and devices, and files that vanish.
    """
    source = Path(source)
    base = normalize_path(path)
    if not source.is_dir():
        raise SourceChanged(f"{source} is not a directory (or vanished); nothing was committed")
    root = source.resolve()
    for dirpath, dirnames, filenames in os.walk(source, followlinks=False):
        dirnames.sort()
        here = Path(dirpath)
        # Symlinked directories: follow only those that stay inside the source tree.
        for d in dirnames:
            if (here / d).is_symlink():
                _require_inside(here / d, root)
        for name in sorted(filenames):
            p = here / name
            if p.is_symlink():
                target = _require_inside(p, root)
                if not target.is_file():
                    raise InvalidPath(f"{p} is a link to {target}, which is not a regular file")
                readable = target
            elif not p.is_file():
                if not p.exists():
                    raise SourceChanged(f"{p} vanished during the put; nothing was committed")
                raise InvalidPath(
                    f"{p} is not a regular file (a socket or device?); remove it or put files one by one"
                )
            else:
                readable = p
            rel = p.relative_to(source).as_posix()
            yield file_path(base.rstrip("/") + "/" + rel), readable


class CommitWriter(abc.ABC):
    """Stages the changes of one commit. Nothing is visible until the commit finishes."""

    @abc.abstractmethod
    def put_bytes(self, path: str, data: bytes) -> None: ...

    @abc.abstractmethod
    def put_file(self, path: str, source: Path) -> None: ...

    @abc.abstractmethod
    def put_tree(self, path: str, source: Path, *, progress=None) -> int:
        """Put every file under ``source`` at ``path``; returns the number of files.

        ``progress(nbytes)`` is called after each file.
        """

    @abc.abstractmethod
    def delete(self, path: str) -> None:
        """Delete a file, or a directory and everything under it."""

    @abc.abstractmethod
    def copy(self, path: str, source: FileInfo) -> None:
        """Put at ``path`` the content of ``source``, a file of a finished commit of this
        backend (as ``walk_files`` gives it), without reading or sending its bytes."""

    @abc.abstractmethod
    def set_metadata(self, metadata: dict[str, str]) -> None:
        """Key/value metadata that lands with the commit, in the same atomic step."""

    @property
    @abc.abstractmethod
    def id(self) -> str: ...


class Backend(abc.ABC):
    """Repos, branches, commits, files, pipelines, jobs: the Pachyderm 2.x data model."""

    name: str = "backend"
    #: whether ``FileInfo.hash`` is the sha256 of the bytes (the embedded store's blobs are
    #: named so; pachd hashes chunk hashes), so that content keyed by sha256 (the review
    #: ledger, Embed's records) can be matched without reading the files
    sha256_hashes: bool = False

    # -- repos and branches ---------------------------------------------------------------
    @abc.abstractmethod
    def create_repo(self, name: str, *, description: str = "") -> RepoInfo: ...

    @abc.abstractmethod
    def list_repos(self, *, include_specs: bool = False) -> list[RepoInfo]: ...

    @abc.abstractmethod
    def inspect_repo(self, name: str) -> RepoInfo: ...

    @abc.abstractmethod
    def delete_repo(self, name: str, *, force: bool = False) -> None: ...

    @abc.abstractmethod
    def list_branches(self, repo: str) -> list[BranchInfo]: ...

    @abc.abstractmethod
    def inspect_branch(self, repo: str, branch: str) -> BranchInfo: ...

    # -- commits --------------------------------------------------------------------------
    @abc.abstractmethod
    def start_commit(
        self,
        repo: str,
        branch: str = "master",
        *,
        description: str = "",
        expect_head: str | None = None,
    ) -> AbstractContextManager[CommitWriter]:
        """A writer whose changes land as one commit when the context exits cleanly.

        ``expect_head``: the commit lands only if the branch's head is still this commit when
        it lands; otherwise ``BranchMoved`` is raised and nothing is committed."""

    @abc.abstractmethod
    def inspect_commit(self, repo: str, commit_id: str) -> CommitInfo: ...

    @abc.abstractmethod
    def list_commits(
        self, repo: str, branch: str | None = None, *, limit: int | None = None
    ) -> list[CommitInfo]:
        """Newest first."""

    @abc.abstractmethod
    def commit_set(self, commit_id: str) -> list[CommitInfo]:
        """Every commit sharing one global ID, upstream first."""

    @abc.abstractmethod
    def wait_commit_set(
        self, commit_id: str, *, timeout: float | None = None
    ) -> list[CommitInfo]: ...

    @abc.abstractmethod
    def delete_commit(self, repo: str, commit_id: str) -> list[CommitRef]:
        """Delete a head commit and the downstream commits of its commit set."""

    def resolve(self, ref: Ref | str) -> CommitInfo:
        """A branch, commit ID or ``BRANCH^`` to the commit it names."""
        if isinstance(ref, str):
            ref = parse_ref(ref)
        if ref.is_commit_id:
            commit = self.inspect_commit(ref.repo, ref.ref)
        else:
            try:
                head = self.inspect_branch(ref.repo, ref.ref).head
            except BranchNotFound:
                if not ref.may_be_prefix:
                    raise
                head = self._by_prefix(ref)
            if head is None:
                raise CommitNotFound(
                    f"branch {ref.repo}@{ref.ref} has no commits yet; put a file in it first"
                )
            commit = self.inspect_commit(ref.repo, head)
        for step in range(ref.ancestry):
            if commit.parent is None:
                raise CommitNotFound(
                    f"{ref} goes back {ref.ancestry} commits, but {ref.repo}@{commit.id} "
                    f"is the first commit ({step} steps back)"
                )
            commit = self.inspect_commit(ref.repo, commit.parent)
        return commit

    def commit_ids_with_prefix(self, repo: str, prefix: str, *, limit: int = 5) -> list[str]:
        """Up to ``limit`` IDs of the repo's commits that start with ``prefix``. A backend
        with an index on commit IDs answers this without listing the repo."""
        return [c.id for c in self.list_commits(repo) if c.id.startswith(prefix)][:limit]

    def _by_prefix(self, ref: Ref) -> str:
        """The one commit a short ID names (no branch has that name)."""
        found = self.commit_ids_with_prefix(ref.repo, ref.ref, limit=5)
        if len(found) == 1:
            return found[0]
        if not found:
            branches = ", ".join(b.name for b in self.list_branches(ref.repo)) or "none"
            raise CommitNotFound(
                f"no branch or commit {ref.ref!r} in {ref.repo}; branches: {branches}"
            )
        shown = ", ".join(found[:4]) + (", ..." if len(found) > 4 else "")
        raise AmbiguousReference(
            f"{ref.repo}@{ref.ref} is the start of more than one commit ({shown}); "
            "give more of the ID"
        )

    def provenance(self, commit: CommitInfo) -> list[CommitRef]:
        """The transitive provenance of a commit, nearest first, each commit once."""
        seen: dict[tuple[str, str], CommitRef] = {}
        frontier = list(commit.direct_provenance)
        while frontier:
            ref = frontier.pop(0)
            key = (ref.repo, ref.id)
            if key in seen:
                continue
            seen[key] = ref
            try:
                frontier.extend(self.inspect_commit(ref.repo, ref.id).direct_provenance)
            except CommitNotFound:
                continue  # spec commits of deleted pipelines, say; provenance stays as recorded
        return list(seen.values())

    @abc.abstractmethod
    def subvenance(self, repo: str, commit_id: str) -> list[CommitRef]:
        """Commits that list this one in their direct provenance."""

    def set_commit_metadata(self, repo: str, commit_id: str, metadata: dict[str, str]) -> None:
        """Attach key/value metadata to a commit (used to write audit verdicts back)."""
        raise NotImplementedError(f"{self.name} does not store commit metadata")

    # -- files ----------------------------------------------------------------------------
    @abc.abstractmethod
    def list_files(
        self, repo: str, commit_id: str, path: str = "/", *, recursive: bool = False
    ) -> list[FileInfo]: ...

    @abc.abstractmethod
    def walk_files(self, repo: str, commit_id: str, path: str = "/") -> Iterator[FileInfo]:
        """Every regular file at or under ``path``."""

    @abc.abstractmethod
    def inspect_file(self, repo: str, commit_id: str, path: str) -> FileInfo: ...

    @abc.abstractmethod
    def get_file(self, repo: str, commit_id: str, path: str) -> bytes: ...

    @abc.abstractmethod
    def copy_out(self, repo: str, commit_id: str, path: str, dest: Path) -> list[Path]:
        """Write a file or directory tree to local disk; returns the files written."""

    @abc.abstractmethod
    def diff_files(
        self,
        repo: str,
        new_commit: str,
        old_commit: str | None,
        path: str = "/",
        *,
        old_repo: str | None = None,
        old_path: str | None = None,
    ) -> list[FileChange]: ...

    @abc.abstractmethod
    def find_commits(self, repo: str, branch_or_commit: str, path: str) -> list[PathCommit]:
        """Commits, newest first, that added, changed or deleted ``path`` (file or dir)."""

    def introduced_by(self, repo: str, commit_id: str, paths: Iterable[str]) -> dict[str, str]:
        """For each file present in ``commit_id``, the commit that gave it its current content."""
        paths = list(paths)
        result: dict[str, str] = {}
        current = {f.path: f.hash for f in self.walk_files(repo, commit_id)}
        pending = {p for p in paths if p in current}
        commit = self.inspect_commit(repo, commit_id)
        while pending and commit.parent is not None:
            parent = self.inspect_commit(repo, commit.parent)
            before = {f.path: f.hash for f in self.walk_files(repo, parent.id)}
            for p in list(pending):
                if before.get(p) != current[p]:
                    result[p] = commit.id
                    pending.discard(p)
            commit = parent
        for p in pending:
            result[p] = commit.id
        return result

    # -- pipelines, jobs, datums ----------------------------------------------------------
    @abc.abstractmethod
    def create_pipeline(
        self, spec: dict, *, update: bool = False, reprocess: bool = False, dry_run: bool = False
    ) -> PipelineInfo: ...

    @abc.abstractmethod
    def list_pipelines(self) -> list[PipelineInfo]: ...

    @abc.abstractmethod
    def inspect_pipeline(self, name: str) -> PipelineInfo: ...

    @abc.abstractmethod
    def delete_pipeline(self, name: str) -> None: ...

    def set_pipeline_state(self, name: str, state: str) -> None:
        """Pause ("paused") or resume ("running") a pipeline."""
        raise NotImplementedError(f"{self.name} cannot pause pipelines")

    @abc.abstractmethod
    def list_jobs(self, pipeline: str | None = None, *, limit: int | None = None) -> list[JobInfo]:
        """Newest first."""

    @abc.abstractmethod
    def inspect_job(self, pipeline: str, job_id: str) -> JobInfo: ...

    @abc.abstractmethod
    def list_datums(self, pipeline: str, job_id: str) -> list[DatumInfo]: ...

    def logs(self, pipeline: str, job_id: str | None = None, datum_id: str | None = None) -> str:
        raise NotImplementedError(f"{self.name} keeps no logs here")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- optional abilities -------------------------------------------------------------------


A = TypeVar("A")


class Checkable(abc.ABC):
    """A backend whose consistency Tulip itself can check (``tulip fsck``)."""

    @abc.abstractmethod
    def fsck(self, *, verify_content: bool = False) -> list[str]:
        """Problems found, as sentences; empty means consistent."""

    @abc.abstractmethod
    def unreferenced(self) -> tuple[list[str], list[Path]]:
        """Blobs nothing uses, and stray temporary files: what ``gc`` would remove."""


class Collectable(abc.ABC):
    """A backend whose unreferenced content Tulip can remove (``tulip gc``)."""

    @abc.abstractmethod
    def gc(self) -> tuple[int, int]:
        """Remove unreferenced blobs and stray temporaries; returns how many of each."""


class LocalBlobs(abc.ABC):
    """A backend that keeps file contents on this machine, readable in place."""

    @abc.abstractmethod
    def blob_path(self, repo: str, commit_id: str, path: str) -> Path:
        """The stored (read-only) blob of a file, for zero-copy reads."""


class LocalServices(abc.ABC):
    """A backend that runs service pipelines as local processes (the embedded engine)."""

    @abc.abstractmethod
    def stop_service(self, pipeline: str) -> bool:
        """Stop the pipeline's service process; True if one was running."""

    @abc.abstractmethod
    def restart_service(self, pipeline: str) -> str | None:
        """Start the service again on the current head of its inputs; returns its URL."""


def require(backend: Backend | type[Backend], ability: type[A], command: str) -> A:
    """The backend as ``ability``, or a clear error that ``command`` does not apply to it.

    Takes a backend class too, so a command can refuse before connecting anywhere."""
    if isinstance(backend, ability):
        return backend
    if isinstance(backend, type) and issubclass(backend, ability):
        return backend  # type: ignore[return-value]
    raise NotApplicable(
        f"{command} does not apply to the {backend.name} backend: it works on the embedded "
        "store's own files, and a Pachyderm cluster keeps and checks its storage itself"
    )
