"""Audit detail: the verdict, findings by severity, suspect classes side by side, the overlap
heatmap, the embedding map, the per-class table and the blame.

The page model (parsed document, thumbnails chosen, chart markup) is built once per audit blob
and cached; a request then costs a commit lookup, a file lookup and a template render.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    get_template_attribute,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from markupsafe import Markup

from pipelines.backend import Backend
from pipelines.errors import InvalidPath, TulipError
from pipelines.info import CommitInfo, FileInfo
from pipelines.layout import AUDIT_FILE, REPORT_FILE, read_json, stat_optional
from pipelines.refs import normalize_path

from ..audit_view import AuditView, Source, build_view, chart_markup
from ..cache import caches
from ..projection import projection_for
from ..reads import resolve
from ..request_store import get_backend
from ..thumbnails import is_image_path

bp = Blueprint("audits", __name__)

REPORT_CSP = (
    "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; img-src data:"
)


@dataclass
class AuditPage:
    commit: CommitInfo
    file: FileInfo
    doc: dict
    view: AuditView
    has_report: bool
    body: Markup


def class_listing(backend: Backend):
    """Image paths of one class folder at a source commit (for the side-by-side thumbnails)."""

    def listing(source: Source, label: str, limit: int) -> list[str]:
        if not source.commit:
            return []
        try:
            folder = normalize_path("/" + label)
            if folder == "/" or "/" in folder[1:]:
                return []
            found = []
            for f in backend.walk_files(source.repo, source.commit, folder):
                if is_image_path(f.path):
                    found.append(f.path)
                    if len(found) >= limit:
                        break
            return found
        except (InvalidPath, TulipError):
            return []

    return listing


def build_page(backend: Backend, commit: CommitInfo, info: FileInfo) -> AuditPage:
    doc = read_json(backend, commit.repo, commit.id, AUDIT_FILE)
    if doc is None:
        raise TulipError(f"{commit.repo}@{commit.id} holds no {AUDIT_FILE}")
    from ..audit_view import document_projection

    projection = None
    if document_projection(doc) is None:
        try:
            projection = projection_for(
                backend, commit, Path(current_app.config["TULIP_CACHE_DIR"])
            )
        except (TulipError, ValueError) as e:
            current_app.logger.warning("no projection for %s@%s: %s", commit.repo, commit.id, e)
    view = build_view(doc, listing=class_listing(backend), projection=projection)
    charts = chart_markup(view, get_template_attribute("charts.html", "heatmap"),
                          get_template_attribute("charts.html", "scatter"))  # fmt: skip
    has_report = stat_optional(backend, commit.repo, commit.id, REPORT_FILE) is not None
    # The report body depends only on the (immutable) document and the app's URLs, so it is
    # rendered once per audit blob; a request renders just the page around it.
    body = Markup(
        render_template(
            "_audit_body.html",
            audit=view,
            charts=charts,
            thumb_src=thumb_src,
            commit_href=commit_href,
            standalone=False,
        )
    )
    return AuditPage(commit, info, doc, view, has_report, body)


def load_page(backend: Backend, repo: str, ref: str) -> AuditPage:
    commit = resolve(backend, repo, ref)
    info = stat_optional(backend, repo, commit.id, AUDIT_FILE) if commit.finished else None
    if info is None:
        abort(404, f"{repo}@{commit.id} holds no {AUDIT_FILE}; is {repo} an audit pipeline's repo?")
    key = (repo, commit.id, info.hash, request.script_root)
    return caches().audit_views.get_or_make(key, lambda: build_page(backend, commit, info))


def _canonical(endpoint: str, repo: str, ref: str, commit_id: str):
    if ref != commit_id:
        return redirect(url_for(endpoint, repo=repo, ref=commit_id, **request.args), code=302)
    return None


def thumb_src(repo: str, commit: str | None, path: str, size: int = 128) -> str | None:
    if not commit:
        return None
    return url_for("thumbs.thumb", repo=repo, commit=commit, path=path.lstrip("/"), s=size)


def commit_href(repo: str, commit: str | None) -> str | None:
    return url_for("commits.page", repo=repo, ref=commit) if commit else None


@bp.get("/audits/<repo>/<ref>")
def page(repo: str, ref: str):
    backend = get_backend()
    p = load_page(backend, repo, ref)
    if (r := _canonical("audits.page", repo, ref, p.commit.id)) is not None:
        return r
    return render_template("audit.html", page=p, audit=p.view, commit=p.commit)


@bp.get("/api/audits/<repo>/<ref>")
def api(repo: str, ref: str):
    p = load_page(get_backend(), repo, ref)
    return jsonify(
        {
            "repo": repo,
            "commit": p.commit.id,
            "file": {"path": p.file.path, "hash": p.file.hash, "size": p.file.size},
            "audit": p.doc,
            "derived": p.view.as_dict(),
            "links": {
                "page": url_for("audits.page", repo=repo, ref=p.commit.id),
                "commit": url_for("commits.page", repo=repo, ref=p.commit.id),
                "lineage": url_for("lineage.page", repo=repo, ref=p.commit.id),
                "report": url_for("audits.report", repo=repo, ref=p.commit.id)
                if p.has_report
                else None,
            },
        }
    )


@bp.get("/audits/<repo>/<ref>/report.html")
def report(repo: str, ref: str):
    """The standalone report as the pipeline wrote it, sandboxed: it is a file from the store."""
    backend = get_backend()
    commit = resolve(backend, repo, ref)
    data = backend.get_file(repo, commit.id, REPORT_FILE)
    response = Response(data, mimetype="text/html")
    response.headers["Content-Security-Policy"] = REPORT_CSP
    return response
