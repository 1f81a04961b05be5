"""``/files/<repo>/<commit>/<path>``: a stored image as it is, for Label Studio tasks exported by
``tulip review export`` (their image URLs point here).

Only images are served, with their own media type and ``nosniff``: a file of the store is
never rendered as a page of this origin. A token-protected server lets a request through
without the token when it carries the URL's signature (``auditor.review.interchange``), made
with the server's token for this one file: Label Studio's browser holds no cookie of ours.
"""

from __future__ import annotations

import mimetypes

from flask import Blueprint, Response, abort, current_app

from pipelines.refs import COMMIT_ID, normalize_path

from ..reads import resolve
from ..request_store import get_backend
from ..thumbnails import is_image_path

bp = Blueprint("files", __name__)


@bp.get("/files/<repo>/<commit>/<path:path>")
def raw(repo: str, commit: str, path: str):
    repo_path = normalize_path(path)
    if not is_image_path(repo_path):
        abort(415, f"{repo_path} is not an image; only images are served here")
    backend = get_backend()
    commit_id = commit if COMMIT_ID.match(commit) else resolve(backend, repo, commit).id
    info = backend.inspect_file(repo, commit_id, repo_path)
    if info.type != "file":
        abort(404, f"{repo_path} in {repo}@{commit_id} is a directory, not an image")
    kind = mimetypes.guess_type(repo_path)[0] or "application/octet-stream"
    response = Response(backend.get_file(repo, commit_id, repo_path), mimetype=kind)
    private = "private" if current_app.config.get("TULIP_TOKEN") else "public"
    immutable = commit_id == commit
    response.headers["Cache-Control"] = (
        f"{private}, max-age=31536000, immutable" if immutable else f"{private}, no-cache"
    )
    response.headers["Content-Disposition"] = "inline"
    return response
