"""The gRPC face of the double: pachd's method paths ('/pfs_v2.API/InspectCommit', ...) served
with Pachyderm's own message types from ``pachyderm_sdk.api`` (betterproto: ``bytes(msg)`` out,
``Msg.FromString`` in). Unregistered methods answer UNIMPLEMENTED, as a pachd without that
API would.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
from betterproto.lib.google.protobuf import BytesValue, Empty
from pachyderm_sdk.api import metadata as md
from pachyderm_sdk.api import pfs, pps
from pachyderm_sdk.api import version as ver

from .state import (
    DEFAULT_PROJECT,
    JOB_CREATED,
    META_REPO,
    SPEC_REPO,
    USER_REPO,
    CommitRec,
    Entry,
    PachdState,
    RepoKey,
    Status,
    Transform,
    children_of,
    clean_path,
    diff_entries,
    failed,
    glob_regex,
    not_found,
    repo_str,
    tree_entries,
    under,
)

PACHD_VERSION = (2, 12, 2)  # the release pachyderm-sdk 2.12.2 (this protocol) goes with

# Methods a pachd older than the release that added them does not have: it answers
# UNIMPLEMENTED, as gRPC-Go does for a method or service it does not serve.
ADDED_IN = {
    "/pps_v2.API/CreatePipelineV2": (2, 8),
    "/metadata.API/EditMetadata": (2, 10),
}
CHUNK = 1 << 20


# -- message conversion ---------------------------------------------------------------------


def repo_key(repo: pfs.Repo | None) -> RepoKey:
    if repo is None:
        return (DEFAULT_PROJECT, "", USER_REPO)
    project = repo.project.name if repo.project and repo.project.name else DEFAULT_PROJECT
    return (project, repo.name, repo.type or USER_REPO)


def repo_msg(key: RepoKey) -> pfs.Repo:
    return pfs.Repo(name=key[1], type=key[2], project=pfs.Project(name=key[0]))


def branch_msg(repo: RepoKey, name: str) -> pfs.Branch:
    return pfs.Branch(repo=repo_msg(repo), name=name)


def commit_msg(repo: RepoKey, cid: str, branch: str | None = None) -> pfs.Commit:
    c = pfs.Commit(repo=repo_msg(repo), id=cid)
    if branch:
        c.branch = branch_msg(repo, branch)
    return c


def _remaining(ctx: grpc.ServicerContext) -> float | None:
    """Seconds left before the caller's deadline; None when it set none."""
    left = ctx.time_remaining()
    return None if left is None or left > 1e6 else max(left, 0.0)


class Double:
    """Request handlers over one ``PachdState``."""

    def __init__(self, state: PachdState, version: tuple[int, int, int] = PACHD_VERSION):
        self.s = state
        self.version = version

    # -- helpers ----------------------------------------------------------------------------
    def resolve(self, commit: pfs.Commit) -> CommitRec:
        branch = commit.branch.name if commit.branch and commit.branch.name else None
        repo = (
            commit.repo
            if commit.repo and commit.repo.name
            else (commit.branch.repo if commit.branch else None)
        )
        return self.s.resolve(repo_key(repo), commit.id, branch)

    def resolve_picker(self, picker: pfs.CommitPicker) -> CommitRec:
        if picker.id and picker.id.id:
            r = picker.id.repo.name
            return self.s.resolve(
                (r.project.name or DEFAULT_PROJECT, r.name, r.type or USER_REPO), picker.id.id, None
            )
        if picker.branch_head and picker.branch_head.name and picker.branch_head.name.name:
            b = picker.branch_head.name
            r = b.repo.name
            return self.s.resolve(
                (r.project.name or DEFAULT_PROJECT, r.name, r.type or USER_REPO), "", b.name
            )
        if picker.ancestor and picker.ancestor.start:
            c = self.resolve_picker(picker.ancestor.start)
            for _ in range(picker.ancestor.offset):
                if c.parent is None:
                    raise not_found(f"commit {repo_str(c.repo)}@{c.id}^ not found")
                c = self.s.commits[(c.repo, c.parent)]
            return c
        raise Status(grpc.StatusCode.INVALID_ARGUMENT, "commit picker must be set")

    def commit_info(self, c: CommitRec) -> pfs.CommitInfo:
        size = c.size
        info = pfs.CommitInfo(
            commit=commit_msg(c.repo, c.id, c.branch),
            origin=pfs.CommitOrigin(kind=pfs.OriginKind(c.origin)),
            description=c.description,
            child_commits=[commit_msg(c.repo, x) for x in c.children],
            started=c.started,
            direct_provenance=[commit_msg(k[0], k[1], self._branch_of(k)) for k in c.provenance],
            direct_subvenance=[
                commit_msg(x.repo, x.id, x.branch) for x in self.s.subvenance(c.key)
            ],
            error=c.error,
            size_bytes_upper_bound=size,
            metadata=dict(c.metadata),
            created_at=c.started,
        )
        if c.parent:
            info.parent_commit = commit_msg(c.repo, c.parent, self._branch_of((c.repo, c.parent)))
        if c.finishing:
            info.finishing = c.finishing
        if c.finished:
            info.finished = c.finished
            info.details = pfs.CommitInfoDetails(size_bytes=size)
        return info

    def _branch_of(self, key) -> str | None:
        c = self.s.commits.get(key)
        return c.branch if c else None

    def file_info(self, c: CommitRec, e: Entry) -> pfs.FileInfo:
        fi = pfs.FileInfo(
            file=pfs.File(commit=commit_msg(c.repo, c.id, c.branch), path=e.path),
            file_type=pfs.FileType.DIR if e.is_dir else pfs.FileType.FILE,
            size_bytes=e.size,
            hash=e.hash,
        )
        if c.finishing:
            fi.committed = c.finishing
        return fi

    def repo_info(self, key: RepoKey) -> pfs.RepoInfo:
        r = self.s.repo(key)
        size = 0
        master = self.s.branches.get((key, "master"))
        if master and master.head:
            size = self.s.commits[(key, master.head)].size
        return pfs.RepoInfo(
            repo=repo_msg(key),
            created=r.created,
            size_bytes_upper_bound=size,
            description=r.description,
            branches=[branch_msg(key, b.name) for b in self.s.repo_branches(key)],
            details=pfs.RepoInfoDetails(size_bytes=size),
            metadata=dict(r.metadata),
        )

    def branch_info(self, b) -> pfs.BranchInfo:
        info = pfs.BranchInfo(
            branch=branch_msg(b.repo, b.name),
            provenance=[branch_msg(*k) for k in self.s.full_provenance(b.key)],
            subvenance=[branch_msg(*k) for k in self.s.subvenant_branches(b.key)],
            direct_provenance=[branch_msg(*k) for k in b.provenance],
            metadata=dict(b.metadata),
            created_at=b.created,
        )
        if b.head:
            info.head = commit_msg(b.repo, b.head, b.name)
        return info

    # -- version ----------------------------------------------------------------------------
    def GetVersion(self, req: Empty, ctx) -> ver.Version:
        major, minor, micro = self.version
        return ver.Version(major=major, minor=minor, micro=micro, platform="protocol-double")

    # -- pfs: repos and branches ------------------------------------------------------------
    def CreateRepo(self, req: pfs.CreateRepoRequest, ctx) -> Empty:
        key = repo_key(req.repo)
        if not req.repo.type:
            key = (key[0], key[1], USER_REPO)
        self.s.create_repo(key, req.description, req.update)
        return Empty()

    def InspectRepo(self, req: pfs.InspectRepoRequest, ctx) -> pfs.RepoInfo:
        with self.s.lock:
            return self.repo_info(repo_key(req.repo))

    def ListRepo(self, req: pfs.ListRepoRequest, ctx) -> Iterator[pfs.RepoInfo]:
        with self.s.lock:
            infos = [
                self.repo_info(r.key)
                for r in sorted(self.s.list_repos(req.type), key=lambda r: r.key[1:])
            ]
        yield from infos

    def DeleteRepo(self, req: pfs.DeleteRepoRequest, ctx) -> pfs.DeleteRepoResponse:
        return pfs.DeleteRepoResponse(deleted=self.s.delete_repo(repo_key(req.repo), req.force))

    def CreateBranch(self, req: pfs.CreateBranchRequest, ctx) -> Empty:
        with self.s.lock:
            head = (
                self.resolve(req.head)
                if req.head and (req.head.id or (req.head.branch and req.head.branch.name))
                else None
            )
            self.s.create_branch(
                (repo_key(req.branch.repo), req.branch.name),
                head,
                [(repo_key(p.repo), p.name) for p in req.provenance],
            )
        return Empty()

    def InspectBranch(self, req: pfs.InspectBranchRequest, ctx) -> pfs.BranchInfo:
        with self.s.lock:
            return self.branch_info(self.s.branch((repo_key(req.branch.repo), req.branch.name)))

    def ListBranch(self, req: pfs.ListBranchRequest, ctx) -> Iterator[pfs.BranchInfo]:
        with self.s.lock:
            key = repo_key(req.repo)
            self.s.repo(key)
            infos = [self.branch_info(b) for b in self.s.repo_branches(key)]
        yield from infos

    # -- pfs: commits -------------------------------------------------------------------------
    def StartCommit(self, req: pfs.StartCommitRequest, ctx) -> pfs.Commit:
        with self.s.lock:
            parent = self.resolve(req.parent) if req.parent and req.parent.id else None
            c = self.s.start_commit(
                (repo_key(req.branch.repo), req.branch.name), parent, req.description
            )
            return commit_msg(c.repo, c.id, c.branch)

    def FinishCommit(self, req: pfs.FinishCommitRequest, ctx) -> Empty:
        with self.s.lock:
            self.s.finish_commit(self.resolve(req.commit), req.description, req.error, req.force)
        return Empty()

    def InspectCommit(self, req: pfs.InspectCommitRequest, ctx) -> pfs.CommitInfo:
        with self.s.lock:
            c = self.resolve(req.commit)
        if req.wait in (pfs.CommitState.FINISHING, pfs.CommitState.FINISHED) and c.finished is None:
            self.s.wait(
                lambda: c.finished is not None or c.key not in self.s.commits, _remaining(ctx)
            )
            if c.key not in self.s.commits:
                raise not_found(f"commit {repo_str(c.repo)}@{c.id} was deleted")
        with self.s.lock:
            return self.commit_info(c)

    def ListCommit(self, req: pfs.ListCommitRequest, ctx) -> Iterator[pfs.CommitInfo]:
        with self.s.lock:
            to = (
                self.resolve(req.to)
                if req.to and (req.to.id or (req.to.branch and req.to.branch.name))
                else None
            )
            from_ = self.resolve(req.from_) if req.from_ and req.from_.id else None
            commits = self.s.list_commits(repo_key(req.repo), to, from_, req.number)
            infos = [self.commit_info(c) for c in commits]
        yield from infos

    def InspectCommitSet(self, req: pfs.InspectCommitSetRequest, ctx) -> Iterator[pfs.CommitInfo]:
        set_id = req.commit_set.id
        with self.s.lock:
            commits = self.s.commit_set(set_id)
        if req.wait:
            members = [c for c in commits if c.id == set_id]
            done = self.s.wait(
                lambda: all(c.finished is not None or c.key not in self.s.commits for c in members),
                _remaining(ctx),
            )
            if not done:
                raise Status(grpc.StatusCode.DEADLINE_EXCEEDED, "context deadline exceeded")
        with self.s.lock:
            infos = [self.commit_info(c) for c in commits if c.key in self.s.commits]
        yield from infos

    def DropCommitSet(self, req: pfs.DropCommitSetRequest, ctx) -> Empty:
        self.s.drop_commit_set(req.commit_set.id)
        return Empty()

    def WalkCommitProvenance(
        self, req: pfs.WalkCommitProvenanceRequest, ctx
    ) -> Iterator[pfs.CommitInfo]:
        with self.s.lock:
            infos = [
                self.commit_info(c)
                for picker in req.start
                for c in self.s.walk_provenance(
                    self.resolve_picker(picker), req.max_depth, req.max_commits
                )
            ]
        yield from infos

    def WalkCommitSubvenance(
        self, req: pfs.WalkCommitSubvenanceRequest, ctx
    ) -> Iterator[pfs.CommitInfo]:
        with self.s.lock:
            infos = [
                self.commit_info(c)
                for picker in req.start
                for c in self.s.walk_subvenance(
                    self.resolve_picker(picker), req.max_depth, req.max_commits
                )
            ]
        yield from infos

    def FindCommits(self, req: pfs.FindCommitsRequest, ctx) -> Iterator[pfs.FindCommitsResponse]:
        with self.s.lock:
            start = self.resolve(req.start)
            results = list(self.s.find_commits(start, req.file_path, req.limit))
        for searched, (kind, c) in enumerate(results, start=1):
            msg = commit_msg(c.repo, c.id, c.branch)
            if kind == "found":
                yield pfs.FindCommitsResponse(found_commit=msg, commits_searched=searched)
            else:
                yield pfs.FindCommitsResponse(last_searched_commit=msg, commits_searched=searched)

    # -- pfs: files ---------------------------------------------------------------------------
    def ModifyFile(self, request_iterator, ctx) -> Empty:
        ops: list[tuple[str, str, bytes]] = []
        target: pfs.Commit | None = None
        for req in request_iterator:
            if req.is_set("set_commit") and (req.set_commit.id or req.set_commit.repo.name):
                target = req.set_commit
            elif req.is_set("delete_file"):
                ops.append(("delete", req.delete_file.path, b""))
            elif req.is_set("add_file"):
                if req.add_file.url and req.add_file.url.url:
                    raise Status(
                        grpc.StatusCode.UNIMPLEMENTED, "the protocol double cannot fetch URLs"
                    )
                ops.append(("add", req.add_file.path, req.add_file.raw or b""))
            elif req.is_set("copy_file"):
                ops.extend(self._copied(req.copy_file))
        if target is None:
            raise failed("set_commit must be the first request of a ModifyFile stream")
        with self.s.lock:
            self.s.modify(self.resolve(target), ops)
            self.s.changed.notify_all()
        return Empty()

    def _copied(self, copy: pfs.CopyFile) -> list[tuple[str, str, bytes]]:
        """CopyFile (driver copyFile): the file, or every file under the directory, of a
        readable source commit, written at ``dst`` (overwriting unless ``append``)."""
        with self.s.lock:
            src = self._readable(copy.src.commit)
            base = clean_path(copy.src.path)
            found = {
                p: f
                for p, f in src.files.items()
                if p == base or p.startswith(base.rstrip("/") + "/")
            }
        if not found:
            raise not_found(
                f"file {base} not found in repo {repo_str(src.repo)} at commit {src.id}"
            )
        dst = clean_path(copy.dst)
        ops: list[tuple[str, str, bytes]] = []
        for p, f in sorted(found.items()):
            target = dst if p == base else dst.rstrip("/") + p[len(base) :]
            if not copy.append:
                ops.append(("delete", target, b""))
            ops.append(("add", target, f.data))
        return ops

    def _readable(self, commit: pfs.Commit) -> CommitRec:
        # driver openCommit: an open commit reads as its parent plus what was written so far
        # (it waits for FINISHED only once finishing, which here is instantaneous)
        return self.resolve(commit)

    def WalkFile(self, req: pfs.WalkFileRequest, ctx) -> Iterator[pfs.FileInfo]:
        with self.s.lock:
            c = self._readable(req.file.commit)
            p = clean_path(req.file.path)
            entries = under(tree_entries(c.files), p)
            if not entries and p != "/":
                raise not_found(f"commit/{c.id}/{p} not found")
            infos = [self.file_info(c, e) for e in entries]
        yield from infos[: req.number] if req.number else infos

    def ListFile(self, req: pfs.ListFileRequest, ctx) -> Iterator[pfs.FileInfo]:
        with self.s.lock:
            c = self._readable(req.file.commit)
            entries = children_of(tree_entries(c.files), clean_path(req.file.path))
            infos = [self.file_info(c, e) for e in entries]
        yield from infos[: req.number] if req.number else infos

    def InspectFile(self, req: pfs.InspectFileRequest, ctx) -> pfs.FileInfo:
        with self.s.lock:
            c = self._readable(req.file.commit)
            p = clean_path(req.file.path)
            want = "" if p == "/" else p
            for e in under(tree_entries(c.files), p):
                if e.path in (want, want + "/") or (p == "/" and e.path == "/"):
                    return self.file_info(c, e)
            raise not_found(f"file {p} not found in repo {repo_str(c.repo)} at commit {c.id}")

    def GetFile(self, req: pfs.GetFileRequest, ctx) -> Iterator[BytesValue]:
        with self.s.lock:
            c = self._readable(req.file.commit)
            p = clean_path(req.file.path)
            rx = glob_regex(p)
            matches = [
                e for e in tree_entries(c.files) if e.path != "/" and rx.match(e.path.rstrip("/"))
            ]
            if not matches:
                raise not_found(f"file {p} not found in repo {repo_str(c.repo)} at commit {c.id}")
            if any(e.is_dir for e in matches):
                raise failed("cannot get directory or non-regular file. Use GetFileTAR instead")
            if len(matches) > 1:
                raise failed("matched multiple files. Use GetFileTAR instead")
            data = matches[0].file.data
        for i in range(0, max(len(data), 1), CHUNK):
            yield BytesValue(value=data[i : i + CHUNK])

    def DiffFile(self, req: pfs.DiffFileRequest, ctx) -> Iterator[pfs.DiffFileResponse]:
        with self.s.lock:
            new = self._readable(req.new_file.commit)
            new_path = clean_path(req.new_file.path)
            if (
                req.old_file
                and req.old_file.commit
                and (req.old_file.commit.id or req.old_file.commit.repo.name)
            ):
                old = self._readable(req.old_file.commit)
                old_path = clean_path(req.old_file.path)
            else:
                old = self.s.commits.get((new.repo, new.parent)) if new.parent else None
                old_path = new_path
            new_entries = under(tree_entries(new.files), new_path)
            old_entries = under(tree_entries(old.files), old_path) if old else []
            out = []
            for n, o in diff_entries(new_entries, old_entries):
                resp = pfs.DiffFileResponse()
                if n is not None:
                    resp.new_file = self.file_info(new, n)
                if o is not None:
                    resp.old_file = self.file_info(old, o)
                out.append(resp)
        yield from out

    # -- metadata ---------------------------------------------------------------------------
    def EditMetadata(self, req: md.EditMetadataRequest, ctx) -> md.EditMetadataResponse:
        with self.s.lock:
            for edit in req.edits:
                if edit.is_set("commit"):
                    target = self.resolve_picker(edit.commit).metadata
                elif edit.is_set("repo"):
                    r = edit.repo.name
                    target = self.s.repo(
                        (r.project.name or DEFAULT_PROJECT, r.name, r.type or USER_REPO)
                    ).metadata
                elif edit.is_set("pipeline"):
                    target = self.s.pipeline(edit.pipeline.name.name).metadata
                else:
                    raise Status(
                        grpc.StatusCode.UNIMPLEMENTED,
                        "the double edits commit, repo and pipeline metadata",
                    )
                if edit.is_set("replace"):
                    target.clear()
                    target.update(edit.replace.replacement)
                elif edit.is_set("add_key"):
                    if edit.add_key.key in target:
                        raise failed(
                            f"cannot add metadata key {edit.add_key.key!r}: it already exists"
                        )
                    target[edit.add_key.key] = edit.add_key.value
                elif edit.is_set("edit_key"):
                    target[edit.edit_key.key] = edit.edit_key.value
                elif edit.is_set("delete_key"):
                    target.pop(edit.delete_key.key, None)
        return md.EditMetadataResponse()

    # -- pps --------------------------------------------------------------------------------
    def CreatePipelineV2(
        self, req: pps.CreatePipelineV2Request, ctx
    ) -> pps.CreatePipelineV2Response:
        try:
            spec = json.loads(req.create_pipeline_request_json)
        except json.JSONDecodeError as e:
            raise Status(
                grpc.StatusCode.INVALID_ARGUMENT, f"invalid pipeline spec JSON: {e}"
            ) from None
        effective = self.s.create_pipeline(
            spec,
            req.create_pipeline_request_json,
            update=req.update or bool(spec.get("update")),
            reprocess=req.reprocess or bool(spec.get("reprocess")),
            dry_run=req.dry_run or bool(spec.get("dryRun") or spec.get("dry_run")),
        )
        return pps.CreatePipelineV2Response(effective_create_pipeline_request_json=effective)

    def CreatePipeline(self, req: pps.CreatePipelineRequest, ctx) -> Empty:
        spec = req.to_dict()
        self.s.create_pipeline(
            spec, json.dumps(spec), update=req.update, reprocess=req.reprocess, dry_run=req.dry_run
        )
        return Empty()

    def pipeline_info(self, name: str, version=None) -> pps.PipelineInfo:
        p = version or self.s.pipeline(name)
        request = pps.CreatePipelineRequest().from_dict(p.spec)
        details = pps.PipelineInfoDetails(
            created_at=p.created,
            updated_at=p.updated,
            output_branch="master",
            description=p.spec.get("description", ""),
            salt=p.salt,
        )
        for field in (
            "transform",
            "parallelism_spec",
            "egress",
            "input",
            "service",
            "spout",
            "datum_tries",
            "resource_requests",
            "resource_limits",
            "scheduling_spec",
            "datum_set_spec",
        ):
            if request.is_set(field):
                setattr(details, field, getattr(request, field))
        kind = pps.PipelineInfoPipelineType.PIPELINE_TYPE_TRANSFORM
        if p.spec.get("service"):
            kind = pps.PipelineInfoPipelineType.PIPELINE_TYPE_SERVICE
        return pps.PipelineInfo(
            pipeline=pps.Pipeline(name=name, project=pfs.Project(name=DEFAULT_PROJECT)),
            version=p.version,
            spec_commit=commit_msg((DEFAULT_PROJECT, name, SPEC_REPO), p.spec_commit, "master"),
            stopped=p.stopped,
            state=pps.PipelineState.PIPELINE_PAUSED
            if p.stopped
            else pps.PipelineState.PIPELINE_RUNNING,
            type=kind,
            details=details,
            user_spec_json=p.user_json,
            effective_spec_json=p.effective_json,
            metadata=dict(p.metadata),
        )

    def InspectPipeline(self, req: pps.InspectPipelineRequest, ctx) -> pps.PipelineInfo:
        with self.s.lock:
            return self.pipeline_info(req.pipeline.name)

    def ListPipeline(self, req: pps.ListPipelineRequest, ctx) -> Iterator[pps.PipelineInfo]:
        with self.s.lock:
            names = (
                [req.pipeline.name]
                if req.pipeline and req.pipeline.name
                else sorted(self.s.pipelines, key=lambda n: self.s.pipelines[n].created)
            )
            infos = []
            for n in names:
                infos.append(self.pipeline_info(n))
                # history: 0 is the current version, N adds N older ones, -1 all of them
                older = list(reversed(self.s.pipeline(n).history))
                keep = older if req.history < 0 else older[: req.history]
                infos += [self.pipeline_info(n, v) for v in keep]
        yield from infos

    def DeletePipeline(self, req: pps.DeletePipelineRequest, ctx) -> Empty:
        self.s.delete_pipeline(req.pipeline.name, force=req.force, keep_repo=req.keep_repo)
        return Empty()

    def StopPipeline(self, req: pps.StopPipelineRequest, ctx) -> Empty:
        with self.s.lock:
            self.s.pipeline(req.pipeline.name).stopped = True
        return Empty()

    def StartPipeline(self, req: pps.StartPipelineRequest, ctx) -> Empty:
        with self.s.lock:
            self.s.pipeline(req.pipeline.name).stopped = False
            self.s.changed.notify_all()
        return Empty()

    def job_info(self, job, *, details: bool) -> pps.JobInfo:
        p = self.s.pipelines.get(job.pipeline)
        info = pps.JobInfo(
            job=pps.Job(
                pipeline=pps.Pipeline(name=job.pipeline, project=pfs.Project(name=DEFAULT_PROJECT)),
                id=job.id,
            ),
            pipeline_version=job.version,
            output_commit=commit_msg((DEFAULT_PROJECT, job.pipeline, USER_REPO), job.id, "master"),
            data_processed=job.data_processed,
            data_skipped=job.data_skipped,
            data_total=job.data_total,
            data_failed=job.data_failed,
            state=pps.JobState(job.state),
            reason=job.reason,
            created=job.created,
        )
        if job.started:
            info.started = job.started
        if job.finished:
            info.finished = job.finished
        if details and p is not None:
            request = pps.CreatePipelineRequest().from_dict(p.spec)
            info.details = pps.JobInfoDetails(
                transform=request.transform, input=request.input, salt=p.salt
            )
        return info

    def InspectJob(self, req: pps.InspectJobRequest, ctx) -> pps.JobInfo:
        with self.s.lock:
            job = self.s.job(req.job.pipeline.name, req.job.id)
        if req.wait and not job.done:
            self.s.wait(lambda: job.done, _remaining(ctx))
        with self.s.lock:
            return self.job_info(job, details=req.details)

    def ListJob(self, req: pps.ListJobRequest, ctx) -> Iterator[pps.JobInfo]:
        with self.s.lock:
            jobs = sorted(self.s.jobs.values(), key=lambda j: -j.seq)
            if req.pipeline and req.pipeline.name:
                p = self.s.pipeline(req.pipeline.name)
                jobs = [j for j in jobs if j.pipeline == p.name]
                if req.history == 0:
                    jobs = [j for j in jobs if j.version == p.version]
            infos = [self.job_info(j, details=req.details) for j in jobs]
        yield from infos[: req.number] if req.number else infos

    def ListDatum(self, req: pps.ListDatumRequest, ctx) -> Iterator[pps.DatumInfo]:
        with self.s.lock:
            job = self.s.job(req.job.pipeline.name, req.job.id)
            infos = []
            for d in job.datums:
                data = []
                for repo, cid, _name, e in d.files:
                    c = self.s.commits.get((repo, cid))
                    if c is not None:
                        data.append(self.file_info(c, e))
                infos.append(
                    pps.DatumInfo(
                        datum=pps.Datum(job=req.job, id=d.id),
                        state=pps.DatumState(d.state),
                        data=data,
                    )
                )
        yield from infos

    def GetLogs(self, req: pps.GetLogsRequest, ctx) -> Iterator[pps.LogMessage]:
        with self.s.lock:
            name = req.pipeline.name or req.job.pipeline.name
            self.s.pipeline(name)
            jobs = (
                [self.s.job(name, req.job.id)]
                if req.job and req.job.id
                else [
                    j
                    for j in sorted(self.s.jobs.values(), key=lambda j: j.seq)
                    if j.pipeline == name
                ]
            )
            msgs = [
                pps.LogMessage(
                    pipeline_name=name,
                    job_id=j.id,
                    datum_id=d,
                    message=m,
                    user=True,
                    project_name=DEFAULT_PROJECT,
                )
                for j in jobs
                for d, m in j.logs
                if not (req.datum and req.datum.id) or d == req.datum.id
            ]
        yield from msgs


# -- registration -----------------------------------------------------------------------------

UNARY = {
    "versionpb_v2.API": {"GetVersion": Empty},
    "pfs_v2.API": {
        "CreateRepo": pfs.CreateRepoRequest,
        "InspectRepo": pfs.InspectRepoRequest,
        "DeleteRepo": pfs.DeleteRepoRequest,
        "CreateBranch": pfs.CreateBranchRequest,
        "InspectBranch": pfs.InspectBranchRequest,
        "StartCommit": pfs.StartCommitRequest,
        "FinishCommit": pfs.FinishCommitRequest,
        "InspectCommit": pfs.InspectCommitRequest,
        "DropCommitSet": pfs.DropCommitSetRequest,
        "InspectFile": pfs.InspectFileRequest,
    },
    "metadata.API": {"EditMetadata": md.EditMetadataRequest},
    "pps_v2.API": {
        "CreatePipelineV2": pps.CreatePipelineV2Request,
        "CreatePipeline": pps.CreatePipelineRequest,
        "InspectPipeline": pps.InspectPipelineRequest,
        "DeletePipeline": pps.DeletePipelineRequest,
        "StopPipeline": pps.StopPipelineRequest,
        "StartPipeline": pps.StartPipelineRequest,
        "InspectJob": pps.InspectJobRequest,
    },
}
STREAM = {
    "pfs_v2.API": {
        "ListRepo": pfs.ListRepoRequest,
        "ListBranch": pfs.ListBranchRequest,
        "ListCommit": pfs.ListCommitRequest,
        "InspectCommitSet": pfs.InspectCommitSetRequest,
        "WalkCommitProvenance": pfs.WalkCommitProvenanceRequest,
        "WalkCommitSubvenance": pfs.WalkCommitSubvenanceRequest,
        "FindCommits": pfs.FindCommitsRequest,
        "WalkFile": pfs.WalkFileRequest,
        "ListFile": pfs.ListFileRequest,
        "GetFile": pfs.GetFileRequest,
        "DiffFile": pfs.DiffFileRequest,
    },
    "pps_v2.API": {
        "ListPipeline": pps.ListPipelineRequest,
        "ListJob": pps.ListJobRequest,
        "ListDatum": pps.ListDatumRequest,
        "GetLogs": pps.GetLogsRequest,
    },
}
CLIENT_STREAM = {"pfs_v2.API": {"ModifyFile": pfs.ModifyFileRequest}}


def _abort(ctx: grpc.ServicerContext, e: Status) -> None:
    ctx.abort(e.code, e.message)


def _handlers(double: Double, calls: list[str]) -> list[grpc.GenericRpcHandler]:
    def served(service: str, name: str) -> None:
        calls.append(f"/{service}/{name}")
        added = ADDED_IN.get(f"/{service}/{name}")
        # (a pachd built from source says 0.0.0 and has every method)
        if added is not None and double.version[0] > 0 and double.version[:2] < added:
            raise Status(
                grpc.StatusCode.UNIMPLEMENTED, f"unknown method {name} for service {service}"
            )

    def unary(service: str, name: str, fn: Callable):
        @functools.wraps(fn)
        def handle(req, ctx):
            try:
                served(service, name)
                return fn(req, ctx)
            except Status as e:
                _abort(ctx, e)

        return handle

    def stream(service: str, name: str, fn: Callable):
        @functools.wraps(fn)
        def handle(req, ctx):
            try:
                served(service, name)
                yield from fn(req, ctx)
            except Status as e:
                _abort(ctx, e)

        return handle

    out = []
    services = sorted(set(UNARY) | set(STREAM) | set(CLIENT_STREAM))
    for service in services:
        table = {}
        for name, msg in UNARY.get(service, {}).items():
            table[name] = grpc.unary_unary_rpc_method_handler(
                unary(service, name, getattr(double, name)),
                request_deserializer=msg.FromString,
                response_serializer=bytes,
            )
        for name, msg in STREAM.get(service, {}).items():
            table[name] = grpc.unary_stream_rpc_method_handler(
                stream(service, name, getattr(double, name)),
                request_deserializer=msg.FromString,
                response_serializer=bytes,
            )
        for name, msg in CLIENT_STREAM.get(service, {}).items():
            table[name] = grpc.stream_unary_rpc_method_handler(
                unary(service, name, getattr(double, name)),
                request_deserializer=msg.FromString,
                response_serializer=bytes,
            )
        out.append(grpc.method_handlers_generic_handler(service, table))
    return out


class PachdProtocolDouble:
    """An in-process gRPC server speaking pachd's protocol, with pachd's semantics.

    It exists only because pachd needs Kubernetes and cannot run here. It serves the PFS,
    PPS, metadata and version methods that ``PachydermBackend`` calls, over a real channel on
    127.0.0.1, with Pachyderm's own message types. Pipelines do not run containers: a job is
    emulated by ``transforms[pipeline](DoubleJob) -> {path: bytes}`` (nothing by default).

    >>> with PachdProtocolDouble() as pachd:
    ...     client = pachyderm_sdk.Client.from_pachd_address(pachd.address)
    """

    def __init__(
        self,
        *,
        auto_run: bool = True,
        host: str = "127.0.0.1",
        workers: int = 16,
        version: tuple[int, int, int] = PACHD_VERSION,
    ):
        self.state = PachdState()
        self._double = Double(self.state, version)
        self.calls: list[str] = []
        self.auto_run = auto_run
        self._server = grpc.server(ThreadPoolExecutor(max_workers=workers))
        self._server.add_generic_rpc_handlers(_handlers(self._double, self.calls))
        self.port = self._server.add_insecure_port(f"{host}:0")
        self.host = host
        self.address = f"grpc://{host}:{self.port}"
        self._runner: threading.Thread | None = None

    @property
    def version(self) -> tuple[int, int, int]:
        """The pachd release this double answers as (GetVersion, and which methods exist);
        settable, to play an older cluster holding the same data."""
        return self._double.version

    @version.setter
    def version(self, value: tuple[int, int, int]) -> None:
        self._double.version = tuple(value)

    @property
    def transforms(self) -> dict[str, Transform]:
        return self.state.transforms

    def start(self) -> PachdProtocolDouble:
        self._server.start()
        if self.auto_run:
            self._runner = threading.Thread(
                target=self._run_forever, name="pachd-double-jobs", daemon=True
            )
            self._runner.start()
        return self

    def stop(self) -> None:
        with self.state.changed:
            self.state.closed = True
            self.state.changed.notify_all()
        self._server.stop(grace=None)
        if self._runner is not None:
            self._runner.join(timeout=5)

    def __enter__(self) -> PachdProtocolDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- job emulation ------------------------------------------------------------------------
    def run_one(self) -> bool:
        prepared = self.state.runnable_job()
        if prepared is None:
            return False
        job, out, dj, datums, metas = prepared
        try:
            result: dict[str, bytes] | Exception = self.state.transform_for(job.pipeline)(dj)
        except Exception as e:  # a failing transform is a failing job
            result = e
        self.state.finish_job(job, out, metas, datums, result, dj.logs)
        return True

    def run_pending(self) -> int:
        """Run every job that can run now (and those they unblock); returns how many ran."""
        n = 0
        while self.run_one():
            n += 1
        return n

    def _run_forever(self) -> None:
        while not self.state.closed:
            if not self.run_one():
                with self.state.changed:
                    self.state.changed.wait(timeout=0.2)

    def pending_jobs(self) -> list[str]:
        with self.state.lock:
            return [
                f"{j.pipeline}@{j.id}" for j in self.state.jobs.values() if j.state == JOB_CREATED
            ]

    def spec_repos(self) -> list[str]:
        with self.state.lock:
            return [repo_str(k) for k in self.state.repos if k[2] in (SPEC_REPO, META_REPO)]
