"""A commit: its files (paginated), its diff against its parent, its provenance; and a repo's
commit list. Commit descriptions, file names and errors are attacker-controlled text: the
templates escape them like everything else."""

from __future__ import annotations

from flask import Blueprint, jsonify, redirect, render_template, request, url_for

from pipelines.backend import Backend
from pipelines.errors import TulipError
from pipelines.info import CommitInfo
from pipelines.layout import AUDIT_FILE, CONVERSION_FILE, METRICS_FILE, REPORT_FILE, stat_optional

from ..reads import resolve
from ..request_store import get_backend
from ..thumbnails import is_image_path
from .audits import commit_href, thumb_src

bp = Blueprint("commits", __name__)

PAGE_SIZE = 100
DIFF_SHOWN = 500


def _page_number() -> int:
    try:
        return max(1, int(request.args.get("page", "1")))
    except ValueError:
        return 1


def commit_data(backend: Backend, commit: CommitInfo, page: int) -> dict:
    files = list(backend.walk_files(commit.repo, commit.id)) if commit.finished else []
    pages = max(1, -(-len(files) // PAGE_SIZE))
    page = min(page, pages)
    shown = files[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    diff = []
    if commit.finished:
        parent = commit.parent
        try:
            diff = backend.diff_files(commit.repo, commit.id, parent)
        except TulipError:
            diff = []
    counts = {"added": 0, "modified": 0, "deleted": 0}
    for ch in diff:
        counts[ch.change] = counts.get(ch.change, 0) + 1
    try:
        provenance = backend.provenance(commit)
    except TulipError:
        provenance = []
    try:
        subvenance = backend.subvenance(commit.repo, commit.id)
    except TulipError:
        subvenance = []
    holds = {
        "audit": stat_optional(backend, commit.repo, commit.id, AUDIT_FILE) is not None,
        "report": stat_optional(backend, commit.repo, commit.id, REPORT_FILE) is not None,
        "metrics": stat_optional(backend, commit.repo, commit.id, METRICS_FILE) is not None,
        "conversion": stat_optional(backend, commit.repo, commit.id, CONVERSION_FILE) is not None,
    } if commit.finished else {}  # fmt: skip
    return {
        "commit": commit,
        "files": shown,
        "file_count": len(files),
        "page": page,
        "pages": pages,
        "diff": diff[:DIFF_SHOWN],
        "diff_total": len(diff),
        "diff_counts": counts,
        "provenance": provenance,
        "subvenance": subvenance,
        "holds": holds,
    }


@bp.get("/commits/<repo>/<ref>")
def page(repo: str, ref: str):
    backend = get_backend()
    commit = resolve(backend, repo, ref)
    if ref != commit.id:
        return redirect(url_for("commits.page", repo=repo, ref=commit.id, **request.args))
    return render_template(
        "commit.html",
        **commit_data(backend, commit, _page_number()),
        thumb_src=thumb_src,
        commit_href=commit_href,
        is_image=is_image_path,
    )


@bp.get("/api/commits/<repo>/<ref>")
def api(repo: str, ref: str):
    backend = get_backend()
    commit = resolve(backend, repo, ref)
    d = commit_data(backend, commit, _page_number())
    return jsonify(
        {
            "commit": commit.as_dict(provenance=d["provenance"]),
            "subvenance": [
                {"repo": r.repo, "branch": r.branch, "id": r.id} for r in d["subvenance"]
            ],
            "files": [f.as_dict() for f in d["files"]],
            "file_count": d["file_count"],
            "page": d["page"],
            "pages": d["pages"],
            "diff": {
                "against": commit.parent,
                "counts": d["diff_counts"],
                "total": d["diff_total"],
                "changes": [c.as_dict() for c in d["diff"]],
            },
            "holds": d["holds"],
        }
    )


@bp.get("/repos/<repo>")
def repo_page(repo: str):
    backend = get_backend()
    info = backend.inspect_repo(repo)
    commits = backend.list_commits(repo, limit=200)
    return render_template("repo.html", repo=info, commits=commits)


@bp.get("/api/repos/<repo>")
def repo_api(repo: str):
    backend = get_backend()
    info = backend.inspect_repo(repo)
    commits = backend.list_commits(repo, limit=200)
    return jsonify({"repo": info.as_dict(), "commits": [c.as_dict() for c in commits]})
