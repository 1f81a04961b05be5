"""Audit detail: the verdict, findings by severity, suspect classes side by side, the overlap
heatmap, the embedding map, the per-class table and the blame.

The page model (parsed document, thumbnails chosen, chart markup) is built once per audit blob
and cached; a request then costs a commit lookup, a file lookup and a template render.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    get_template_attribute,
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

from ..audit_view import AuditView, FindingFilter, Source, build_view, chart_markup
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
    head: Markup  # the report above the findings (cached per audit)
    tail: Markup  # and below them; the findings are rendered per request, one page
    api_json: str = ""  # the document as JSON with FINDINGS_TOKEN for the page's findings
    derived_json: str = "null"  # view.as_dict() as JSON

    @property
    def body(self) -> Markup:
        return self.head + self.tail


FINDINGS_SLOT = "<!--tulip:findings-->"
FINDINGS_TOKEN = "__tulip_findings_of_this_page__"
DERIVED_TOKEN = "__tulip_derived__"


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
    page_url = url_for("audits.page", repo=commit.repo, ref=commit.id)

    def finding_href(i: int) -> str:
        return f"{page_url}?page={view.page_of(i)}#finding-{i}"

    body = render_template(
        "_audit_body.html",
        audit=view,
        charts=charts,
        thumb_src=thumb_src,
        commit_href=commit_href,
        finding_href=finding_href,
        findings_slot=Markup(FINDINGS_SLOT),
        standalone=False,
    )
    head, _, tail = body.partition(FINDINGS_SLOT)
    view.index  # noqa: B018  (built once, with the page, not on the first filtered request)
    # the JSON API's document minus its findings, serialised once: a page of 50 findings
    # must not cost a 500 KB json.dumps of the per-class stats and the projection
    api_json = json.dumps({**doc, "findings": FINDINGS_TOKEN}, separators=(",", ":"))
    derived_json = json.dumps(view.as_dict(), separators=(",", ":"))
    return AuditPage(
        commit, info, doc, view, has_report, Markup(head), Markup(tail), api_json, derived_json
    )


def _filter() -> FindingFilter:
    try:
        return FindingFilter.from_args(request.args)
    except ValueError as e:
        abort(400, str(e))


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


_PATH_MARK = "tulip-path-mark"


def _prefix(endpoint: str, **values: str) -> str:
    """url_for once per (script root, endpoint, values): a page of 50 findings would
    otherwise spend more time building URLs than rendering."""
    key = (request.script_root, endpoint, tuple(sorted(values.items())))
    cache = _URL_PREFIXES
    if key not in cache:
        if len(cache) > 10_000:
            cache.clear()
        cache[key] = url_for(endpoint, **values)
    return cache[key]


_URL_PREFIXES: dict[tuple, str] = {}


def thumb_src(repo: str, commit: str | None, path: str, size: int = 128) -> str | None:
    if not commit:
        return None
    base = _prefix("thumbs.thumb", repo=repo, commit=commit, path=_PATH_MARK)
    return base.replace(_PATH_MARK, quote(path.lstrip("/"), safe="/")) + f"?s={size}"


def commit_href(repo: str, commit: str | None) -> str | None:
    return _prefix("commits.page", repo=repo, ref=commit) if commit else None


@bp.get("/audits/<repo>/<ref>")
def page(repo: str, ref: str):
    backend = get_backend()
    p = load_page(backend, repo, ref)
    if (r := _canonical("audits.page", repo, ref, p.commit.id)) is not None:
        return r
    flt = _filter()
    listing = p.view.index.page(flt)

    def page_url(clear: bool = False, **change) -> str:
        if "cls" in change:
            change["class"] = change.pop("cls")
        args = {} if clear else flt.args(**change)
        return url_for("audits.page", repo=repo, ref=p.commit.id, **args)

    return render_template(
        "audit.html",
        page=p,
        audit=p.view,
        commit=p.commit,
        listing=listing,
        page_url=page_url,
        thumb_src=thumb_src,
        commit_href=commit_href,
        review_url=url_for("review.submit", repo=repo, ref=p.commit.id),
    )


@bp.get("/api/audits/<repo>/<ref>")
def api(repo: str, ref: str):
    p = load_page(get_backend(), repo, ref)
    flt = _filter()
    listing = p.view.index.page(flt)
    raw = p.doc.get("findings") if isinstance(p.doc.get("findings"), list) else []
    shown = [raw[f.index] for f in listing.findings]
    envelope = {
        "repo": repo,
        "commit": p.commit.id,
        "file": {"path": p.file.path, "hash": p.file.hash, "size": p.file.size},
        "audit": FINDINGS_TOKEN,
        "page": {
            "page": flt.page,
            "per_page": flt.per_page,
            "pages": listing.pages,
            "total": listing.total,
            "of": len(raw),
            "filters": {k: v for k, v in flt.args().items() if k not in ("page", "per_page")},
            "next": url_for("audits.api", repo=repo, ref=p.commit.id, **flt.args(page=flt.page + 1))
            if flt.page < listing.pages
            else None,
        },
        "derived": DERIVED_TOKEN,
        "links": {
            "page": url_for("audits.page", repo=repo, ref=p.commit.id),
            "commit": url_for("commits.page", repo=repo, ref=p.commit.id),
            "lineage": url_for("lineage.page", repo=repo, ref=p.commit.id),
            "report": url_for("audits.report", repo=repo, ref=p.commit.id)
            if p.has_report
            else None,
        },
    }
    token = json.dumps(FINDINGS_TOKEN)
    audit = p.api_json.replace(token, json.dumps(shown, separators=(",", ":")), 1)
    body = json.dumps(envelope, separators=(",", ":")).replace(token, audit, 1)
    body = body.replace(json.dumps(DERIVED_TOKEN), p.derived_json, 1)
    return Response(body, mimetype="application/json")


@bp.get("/audits/<repo>/<ref>/report.html")
def report(repo: str, ref: str):
    """The standalone report as the pipeline wrote it, sandboxed: it is a file from the store."""
    backend = get_backend()
    commit = resolve(backend, repo, ref)
    data = backend.get_file(repo, commit.id, REPORT_FILE)
    response = Response(data, mimetype="text/html")
    response.headers["Content-Security-Policy"] = REPORT_CSP
    return response
