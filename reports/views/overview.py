"""The overview: repos, pipelines, the latest jobs, and a timeline of audits with their verdicts."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template

from pipelines.backend import Backend
from pipelines.errors import TulipError
from pipelines.info import JobInfo, iso

from ..cache import caches
from ..reads import audit_repos, audit_timeline
from ..request_store import get_backend

bp = Blueprint("overview", __name__)


def overview_data(backend: Backend) -> dict:
    """Plain data for the template and, through ``as_json``, the API."""
    c = caches()
    repos = backend.list_repos()
    pipelines = backend.list_pipelines()
    jobs = backend.list_jobs(limit=25)
    latest: dict[str, JobInfo] = {}
    for j in jobs:
        latest.setdefault(j.pipeline, j)
    heads = {}
    for r in repos:
        try:
            heads[r.name] = backend.inspect_branch(r.name, "master").head
        except TulipError:
            heads[r.name] = None
    audits = []
    for repo in audit_repos(backend):
        audits.extend(audit_timeline(backend, repo, c.audit_summaries))
    audits.sort(key=lambda a: a["started"], reverse=True)
    return {
        "repos": [{"info": r, "head": heads.get(r.name)} for r in repos],
        "pipelines": [
            {
                "name": p.name,
                "version": p.version,
                "state": p.state,
                "inputs": [{"repo": r, "branch": b} for r, b in p.inputs],
                "description": p.description,
                "service_url": p.service_url,
                "latest_job": latest.get(p.name),
                "updated": p.updated,
            }
            for p in pipelines
        ],
        "jobs": jobs,
        "audits": audits,
    }


@bp.get("/")
def page():
    return render_template("overview.html", **overview_data(get_backend()))


def as_json(data: dict) -> dict:
    return {
        "repos": [{**r["info"].as_dict(), "head": r["head"]} for r in data["repos"]],
        "pipelines": [
            {**p, "latest_job": p["latest_job"].as_dict() if p["latest_job"] else None,
             "updated": iso(p["updated"])}
            for p in data["pipelines"]
        ],
        "jobs": [j.as_dict() for j in data["jobs"]],
        "audits": [
            {**a, "started": iso(a["started"]), "finished": iso(a["finished"])}
            for a in data["audits"]
        ],
    }  # fmt: skip


@bp.get("/api/overview")
def api():
    return jsonify(as_json(overview_data(get_backend())))


@bp.get("/healthz")
def healthz():
    """Liveness without touching the store: also the latency benchmark's baseline."""
    return jsonify({"ok": True})
