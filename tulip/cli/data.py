"""Repos, branches, commits and files: the pachctl 2.x verbs over the backend interface."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from pipelines import protojson
from pipelines.errors import InvalidReference
from pipelines.refs import normalize_path, parse_ref

from . import output as out
from .base import (
    Settings,
    create,
    delete,
    diff,
    find,
    get,
    inspect,
    list_,
    pass_settings,
    put,
    wait,
)

# -- repos ----------------------------------------------------------------------------------


@create.command("repo")
@click.argument("name")
@click.option("-d", "--description", default="", help="what the repo holds")
@pass_settings
def create_repo(s: Settings, name: str, description: str) -> None:
    """Create a data repo."""
    s.backend(create=True).create_repo(name, description=description)


@list_.command("repo")
@click.option("--all", "include_specs", is_flag=True, help="include pipeline spec repos")
@out.output_option()
@out.raw_option()
@pass_settings
def list_repo(s: Settings, include_specs: bool, output: str, raw: bool) -> None:
    """List repos, newest first."""
    repos = s.backend().list_repos(include_specs=include_specs)
    if raw:
        return out.emit_raw(protojson.repo_info(r) for r in repos)
    if output == "json":
        return out.emit_json([r.as_dict() for r in repos])
    out.table(
        ["NAME", "CREATED", "SIZE (MASTER)", "DESCRIPTION"],
        [(r.name, out.ago(r.created), out.size(r.size_bytes), r.description) for r in repos],
    )


@inspect.command("repo")
@click.argument("name")
@out.output_option()
@out.raw_option()
@pass_settings
def inspect_repo(s: Settings, name: str, output: str, raw: bool) -> None:
    """Show one repo."""
    r = s.backend().inspect_repo(name)
    if raw:
        return out.emit_raw([protojson.repo_info(r)])
    if output == "json":
        return out.emit_json(r.as_dict())
    for k, v in (
        ("Name", r.name),
        ("Type", r.type),
        ("Description", r.description),
        ("Created", out.ago(r.created)),
        ("Size of master", out.size(r.size_bytes)),
        ("Branches", ", ".join(r.branches)),
        ("Pipeline", r.pipeline or "-"),
    ):
        click.echo(f"{k}: {v}")


@delete.command("repo")
@click.argument("name")
@click.option("-f", "--force", is_flag=True, help="delete even if pipelines read from it")
@pass_settings
def delete_repo(s: Settings, name: str, force: bool) -> None:
    """Delete a repo and all its commits."""
    s.backend().delete_repo(name, force=force)


# -- branches -------------------------------------------------------------------------------


@create.command("branch")
@click.argument("ref")
@click.option(
    "--head", default=None, help="commit the branch starts at (a commit ID or another branch)"
)
@pass_settings
def create_branch(s: Settings, ref: str, head: str | None) -> None:
    """Create or move a branch: REPO@BRANCH."""
    r = parse_ref(ref)
    b = s.backend(create=True)
    head_id = b.resolve(parse_ref(f"{r.repo}@{head}")).id if head else None
    b.create_branch(r.repo, r.ref, head=head_id)


@list_.command("branch")
@click.argument("repo")
@out.output_option()
@pass_settings
def list_branch(s: Settings, repo: str, output: str) -> None:
    """List a repo's branches."""
    branches = s.backend().list_branches(repo)
    if output == "json":
        return out.emit_json([b.as_dict() for b in branches])
    out.table(
        ["BRANCH", "HEAD", "PROVENANCE"],
        [
            (b.name, b.head or "-", ", ".join(f"{r}@{br}" for r, br in b.provenance))
            for b in branches
        ],
    )


# -- commits --------------------------------------------------------------------------------


COMMIT_COLUMNS = [
    "REPO",
    "BRANCH",
    "COMMIT",
    "ORIGIN",
    "PARENT",
    "STARTED",
    "DURATION",
    "SIZE",
    "DESCRIPTION",
]


def _commit_row(c) -> tuple:
    return (
        c.repo,
        c.branch or "-",
        c.id,
        c.origin,
        c.parent or "-",
        out.ago(c.started),
        out.duration(c.started, c.finished) if c.finished else "running",
        out.size(c.size_bytes),
        (c.error and f"error: {c.error}") or c.description,
    )


@list_.command("commit")
@click.argument("ref")
@click.option("-n", "--number", type=int, default=None, help="show at most this many")
@out.output_option()
@out.raw_option()
@pass_settings
def list_commit(s: Settings, ref: str, number: int | None, output: str, raw: bool) -> None:
    """List commits of REPO[@BRANCH], newest first."""
    r = parse_ref(ref, default_branch="")
    commits = s.backend().list_commits(r.repo, r.ref or None, limit=number)
    if raw:
        return out.emit_raw(protojson.commit_info(c) for c in commits)
    if output == "json":
        return out.emit_json([c.as_dict() for c in commits])
    out.table(
        COMMIT_COLUMNS,
        [_commit_row(c) for c in commits],
    )


@inspect.command("commit")
@click.argument("ref")
@out.output_option()
@out.raw_option()
@pass_settings
def inspect_commit(s: Settings, ref: str, output: str, raw: bool) -> None:
    """Show REPO@REF with its direct and transitive provenance."""
    from auditor.status import audit_verdict, gate_state

    b = s.backend()
    c = b.resolve(parse_ref(ref))
    if raw:
        return out.emit_raw([protojson.commit_info(c)])
    prov = b.provenance(c)
    audit = audit_verdict(b, c)
    gate = None if audit is not None else gate_state(b, c)
    if output == "json":
        doc = c.as_dict(provenance=prov)
        if audit is not None:
            doc["audit"] = audit.as_dict()
        if gate is not None:
            doc["gate"] = gate.as_dict()
        return out.emit_json(doc)
    lines = [
        ("Commit", f"{c.repo}@{c.id}"),
        ("Branch", c.branch or "-"),
        ("Origin", c.origin),
        ("Parent", c.parent or "-"),
        ("Started", f"{out.when(c.started)} ({out.ago(c.started)})"),
        ("Finished", out.when(c.finished) if c.finished else "still running"),
        ("Size", out.size(c.size_bytes)),
    ]
    if c.description:
        lines.append(("Description", c.description))
    if c.error:
        lines.append(("Error", c.error))
    for k, v in lines:
        click.echo(f"{k}: {v}")
    click.echo(
        "Direct provenance: " + ("  ".join(f"{p.repo}@{p.id}" for p in c.direct_provenance) or "-")
    )
    click.echo("Provenance: " + ("  ".join(f"{p.repo}@{p.id}" for p in prov) or "-"))
    for k, v in sorted(c.metadata.items()):
        click.echo(f"Metadata {k}: {v}")
    if audit is not None:
        click.echo(f"Verdict: {audit.verdict} ({audit.findings} findings)")
    if gate is not None:
        click.echo(f"Gate: {gate.describe()}")


@delete.command("commit")
@click.argument("ref")
@pass_settings
def delete_commit(s: Settings, ref: str) -> None:
    """Delete a head commit of REPO and the downstream commits it caused."""
    b = s.backend()
    c = b.resolve(parse_ref(ref))
    for d in b.delete_commit(c.repo, c.id):
        out.info(f"deleted {d.repo}@{d.id}", quiet=s.quiet)


@wait.command("commit")
@click.argument("ref")
@click.option("--timeout", type=float, default=None, help="give up after this many seconds")
@out.output_option()
@pass_settings
def wait_commit(s: Settings, ref: str, timeout: float | None, output: str) -> None:
    """Return once every commit of REF's commit set has finished; say what the gate did.

    Each pipeline's commit is reported as it finishes (on stderr; -q for none). The end is
    the audit's verdict and the gate's decision: open (a model was published) or BLOCKED.
    """
    from auditor.status import wait_for_commit_set

    b = s.backend()
    c = b.resolve(parse_ref(ref))
    out.info(f"waiting for commit set {c.id}", quiet=s.quiet)
    started = time.time()

    def finished(commit) -> None:
        state = "failed: " + commit.error if commit.error else "done"
        out.info(
            f"  {commit.repo}@{commit.id[:12]} {state} "
            f"({out.duration(commit.started, commit.finished)}, +{commit.finished - started:.0f}s)",
            quiet=s.quiet,
        )

    status = wait_for_commit_set(b, c.id, timeout=timeout, progress=finished)
    if output == "json":
        return out.emit_json(status.as_dict())
    out.table(COMMIT_COLUMNS, [_commit_row(x) for x in status.commits])
    for audit in status.audits:
        click.echo(
            f"Audit: {audit.verdict.upper()} ({audit.findings} findings) "
            f"{audit.commit.repo}@{audit.commit.id}"
        )
    for gate in status.gates:
        click.echo(f"Gate: {gate.describe()}")


# -- files ----------------------------------------------------------------------------------


def _default_target(local: str, recursive: bool) -> str:
    """Where `put file REPO@BRANCH -f LOCAL` lands when no :/PATH is given, as in pachctl:
    `-r -f ./` puts the directory's contents at the root, `-f orchids` puts /orchids."""
    p = Path(local)
    if recursive and p.as_posix() in (".", ""):
        return "/"
    if p.is_absolute() or ".." in p.parts:
        return "/" + p.name
    return normalize_path(p.as_posix())


@put.command("file")
@click.argument("ref")
@click.option(
    "-f", "--file", "local", required=True, help="local file or directory ('-' for stdin)"
)
@click.option("-r", "--recursive", is_flag=True, help="put a whole directory")
@click.option("-m", "--message", default="", help="commit description")
@out.output_option()
@pass_settings
def put_file(s: Settings, ref: str, local: str, recursive: bool, message: str, output: str) -> None:
    """Put LOCAL at REPO@BRANCH[:/PATH] in one atomic commit."""
    r = parse_ref(ref)
    if r.is_commit_id:
        raise InvalidReference(f"put file needs a branch, not commit {r.ref}: {r.repo}@master")
    target = r.path or _default_target(local, recursive)
    b = s.backend(create=True)
    with b.start_commit(r.repo, r.ref, description=message) as w:
        if local == "-":
            w.put_bytes(target, sys.stdin.buffer.read())
            count = 1
        elif os.path.isdir(local):
            if not recursive:
                raise InvalidReference(f"{local} is a directory; pass -r to put it recursively")
            total = sum(f.stat().st_size for f in Path(local).rglob("*") if f.is_file())
            with out.progress_bar(total, f"put {local}", quiet=s.quiet) as bar:
                count = w.put_tree(target, Path(local), progress=bar.update)
        else:
            if not os.path.lexists(local):
                from pipelines.errors import SourceChanged

                raise SourceChanged(f"no local file {local}; nothing was committed")
            w.put_file(target, Path(local))
            count = 1
        cid = w.id
    if output == "json":
        out.emit_json({"repo": r.repo, "branch": r.ref, "id": cid, "files": count})
    else:
        out.info(f"{r.repo}@{cid}: {count} file{'s' if count != 1 else ''} put", quiet=s.quiet)


@delete.command("file")
@click.argument("ref")
@click.option("-m", "--message", default="", help="commit description")
@pass_settings
def delete_file(s: Settings, ref: str, message: str) -> None:
    """Delete REPO@BRANCH:/PATH (a file, or a directory and everything under it)."""
    r = parse_ref(ref, require_path=True)
    with s.backend().start_commit(r.repo, r.ref, description=message) as w:
        w.delete(r.path)


@list_.command("file")
@click.argument("ref")
@click.option(
    "-r", "--recursive", is_flag=True, help="every file under the path, not just children"
)
@out.output_option()
@out.raw_option()
@pass_settings
def list_file(s: Settings, ref: str, recursive: bool, output: str, raw: bool) -> None:
    """List files at REPO@REF[:/PATH]."""
    r = parse_ref(ref)
    b = s.backend()
    c = b.resolve(r)
    files = b.list_files(r.repo, c.id, r.path or "/", recursive=recursive)
    if raw:
        return out.emit_raw(protojson.file_info(f, branch_name=c.branch) for f in files)
    if output == "json":
        return out.emit_json([f.as_dict() for f in files])
    out.table(["NAME", "TYPE", "SIZE"], [(f.path, f.type, out.size(f.size)) for f in files])


@inspect.command("file")
@click.argument("ref")
@out.output_option()
@out.raw_option()
@pass_settings
def inspect_file(s: Settings, ref: str, output: str, raw: bool) -> None:
    """Show one file: REPO@REF:/PATH."""
    r = parse_ref(ref, require_path=True)
    b = s.backend()
    c = b.resolve(r)
    f = b.inspect_file(r.repo, c.id, r.path)
    if raw:
        return out.emit_raw([protojson.file_info(f, branch_name=c.branch)])
    if output == "json":
        return out.emit_json(f.as_dict())
    for k, v in (
        ("Path", f.path),
        ("Type", f.type),
        ("Size", out.size(f.size)),
        ("Hash", f.hash or "-"),
        ("Commit", f"{f.repo}@{f.commit}"),
    ):
        click.echo(f"{k}: {v}")


@get.command("file")
@click.argument("ref")
@click.option(
    "-o",
    "--output",
    "dest",
    type=click.Path(path_type=Path),
    default=None,
    help="write here (a file, or a directory for a directory) instead of stdout",
)
@pass_settings
def get_file(s: Settings, ref: str, dest: Path | None) -> None:
    """Write REPO@REF:/PATH to stdout, or to -o LOCAL."""
    r = parse_ref(ref, require_path=True)
    b = s.backend()
    c = b.resolve(r)
    if dest is None:
        sys.stdout.buffer.write(b.get_file(r.repo, c.id, r.path))
        sys.stdout.buffer.flush()
        return
    written = b.copy_out(r.repo, c.id, r.path, dest)
    out.info(
        f"wrote {len(written)} file{'s' if len(written) != 1 else ''} to {dest}", quiet=s.quiet
    )


@find.command("commit")
@click.argument("ref")
@out.output_option()
@pass_settings
def find_commit(s: Settings, ref: str, output: str) -> None:
    """Commits that added, changed or deleted REPO@BRANCH:/PATH, newest first."""
    r = parse_ref(ref, require_path=True)
    rows = s.backend().find_commits(r.repo, r.ref, r.path)
    if output == "json":
        return out.emit_json([p.as_dict() for p in rows])
    out.table(
        ["COMMIT", "CHANGE", "FILES", "STARTED", "DESCRIPTION"],
        [
            (p.commit.id, p.change, len(p.files), out.ago(p.commit.started), p.commit.description)
            for p in rows
        ],
    )


@diff.command("file")
@click.argument("new")
@click.argument("old", required=False)
@out.output_option()
@pass_settings
def diff_file(s: Settings, new: str, old: str | None, output: str) -> None:
    """Files added, modified or deleted between REPO@OLD (default: NEW's parent) and REPO@NEW."""
    b = s.backend()
    n = parse_ref(new)
    nc = b.resolve(n)
    if old:
        o = parse_ref(old)
        oc = b.resolve(o)
        changes = b.diff_files(
            n.repo, nc.id, oc.id, n.path or "/", old_repo=o.repo, old_path=o.path or n.path
        )
    else:
        changes = b.diff_files(n.repo, nc.id, nc.parent, n.path or "/")
    if output == "json":
        return out.emit_json([c.as_dict() for c in changes])
    sign = {"added": "+", "deleted": "-", "modified": "~"}
    for c in changes:
        extra = (
            f"  ({out.size(c.old_size)} -> {out.size(c.new_size)})"
            if c.change == "modified"
            else ""
        )
        click.echo(f"{sign[c.change]} {c.path}{extra}")
