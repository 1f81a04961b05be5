"""The review basket: ``POST /audits/<repo>/<ref>/review`` turns the audit page's pending
decisions into a dry-run preview or one fix commit, through ``auditor.review.apply_review``
(the use case ``tulip review apply`` calls too).

The form carries the decisions as JSON (``tulip review apply``'s decision file), ``mode``
(``preview`` or ``apply``), ``by`` and the session's CSRF token (checked in
``reports.security``). The page's script fills the decisions from the finding buttons and
the keyboard; without it the textarea takes them by hand. A request that asks for JSON gets
``ReviewResult.as_dict()``; otherwise the preview or the applied commit as a page.
"""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, render_template, request

from pipelines.errors import CommitConflict

from ..reads import resolve
from ..request_store import get_backend

bp = Blueprint("review", __name__)

MODES = ("preview", "apply")


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def _refuse(status: int, message: str):
    if _wants_json():
        response = jsonify({"error": message, "status": status})
        response.status_code = status
        return response
    abort(status, message)


@bp.post("/audits/<repo>/<ref>/review")
def submit(repo: str, ref: str):
    from auditor.review import InvalidDecisions, apply_review, default_reviewer, parse_decisions

    mode = request.form.get("mode", "preview")
    if mode not in MODES:
        return _refuse(400, f"mode {mode!r} is not one of {', '.join(MODES)}")
    backend = get_backend()
    commit = resolve(backend, repo, ref)
    audit_ref = f"{repo}@{commit.id}"
    by = (request.form.get("by") or "").strip() or default_reviewer()
    try:
        decisions = parse_decisions(request.form.get("decisions") or "", source="the basket")
        result = apply_review(
            backend,
            audit_ref,
            decisions,
            by=by,
            dry_run=mode == "preview",
            new_class=request.form.get("new_class") == "1",
            via="report",
            source="the basket",
        )
    except InvalidDecisions as e:
        return _refuse(400, str(e))
    except CommitConflict as e:  # the branch moved since the audit
        return _refuse(409, str(e))
    d = result.as_dict()
    if _wants_json():
        return jsonify(d)
    return render_template(
        "review.html",
        commit=commit,
        result=d,
        decisions=request.form.get("decisions") or "",
        by=request.form.get("by") or "",
    )
