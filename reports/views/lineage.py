"""Lineage: the upstream and downstream of any commit, drawn as a layered graph whose nodes
open their commit pages. The store graph is built once per store state (branch heads and
recent job states) and cached."""

from __future__ import annotations

from flask import (
    Blueprint,
    get_template_attribute,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from pipelines.backend import Backend
from pipelines.errors import TulipError

from ..cache import caches
from ..lineage_view import commit_lineage, store_graph
from ..reads import resolve
from ..request_store import get_backend

bp = Blueprint("lineage", __name__)


def store_state(backend: Backend) -> tuple:
    """Changes whenever a commit lands or a job moves, so the cached graph never goes stale."""
    heads = []
    for r in backend.list_repos(include_specs=True):
        try:
            heads.append((r.name, tuple((b.name, b.head) for b in backend.list_branches(r.name))))
        except TulipError:
            continue
    jobs = tuple((j.pipeline, j.id, j.state) for j in backend.list_jobs(limit=50))
    return (tuple(heads), jobs)


def graph(backend: Backend):
    return caches().lineage.get_or_make(store_state(backend), lambda: store_graph(backend))


def lineage_for(backend: Backend, repo: str, ref: str):
    commit = resolve(backend, repo, ref)
    return commit, commit_lineage(graph(backend), repo, commit.id)


@bp.get("/lineage/<repo>/<ref>")
def page(repo: str, ref: str):
    backend = get_backend()
    commit, view = lineage_for(backend, repo, ref)
    if ref != commit.id:
        return redirect(url_for("lineage.page", repo=repo, ref=commit.id, **request.args))
    svg = get_template_attribute("lineage_svg.html", "lineage_svg")(view, node_href)
    return render_template("lineage.html", commit=commit, view=view, svg=svg)


def node_href(node) -> str | None:
    if node.repo and node.commit:
        return url_for("commits.page", repo=node.repo, ref=node.commit)
    return None


@bp.get("/api/lineage/<repo>/<ref>")
def api(repo: str, ref: str):
    commit, view = lineage_for(get_backend(), repo, ref)
    d = view.as_dict()
    for n in d["nodes"]:
        n["href"] = node_href(view.nodes[n["id"]])
    return jsonify({"repo": repo, "commit": commit.id, **d})
