"""``/thumbs/<repo>/<commit>/<path>``: JPEG thumbnails of repo images.

The path is checked with ``pipelines.refs.normalize_path`` (``..`` is a 400) and only ever
used to look the file up through the backend; the cache file is named by content hash, so no
request can read or write outside the store. Commit-addressed URLs never change content, so
responses are cacheable for a year, with an ETag for revalidation.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, current_app, request, send_file

from pipelines.refs import COMMIT_ID, normalize_path

from ..reads import resolve
from ..request_store import get_backend
from ..thumbnails import DEFAULT_SIZE, SIZES, NotAnImage, ThumbnailCache

bp = Blueprint("thumbs", __name__)


@bp.get("/thumbs/<repo>/<commit>/<path:path>")
def thumb(repo: str, commit: str, path: str):
    repo_path = normalize_path(path)  # InvalidPath (a 400) for '..' or NUL
    try:
        size = int(request.args.get("s", DEFAULT_SIZE))
    except ValueError:
        size = DEFAULT_SIZE
    size = min(SIZES, key=lambda s: abs(s - size))
    backend = get_backend()
    commit_id = commit if COMMIT_ID.match(commit) else resolve(backend, repo, commit).id
    info = backend.inspect_file(repo, commit_id, repo_path)
    if info.type != "file" or not info.hash:
        abort(404, f"{repo_path} in {repo}@{commit_id} is a directory, not an image")
    etag = f"{info.hash[:32]}-{size}"
    if request.if_none_match.contains(etag):
        response = current_app.response_class(status=304)
        response.set_etag(etag)
        return response
    cache = ThumbnailCache(Path(current_app.config["TULIP_CACHE_DIR"]) / "thumbs")
    try:
        target = cache.get(info.hash, size, lambda: backend.get_file(repo, commit_id, repo_path))
    except NotAnImage:
        abort(415, f"{repo_path} in {repo}@{commit_id} is not an image Pillow can read")
    response = send_file(target, mimetype="image/jpeg", conditional=False, etag=False)
    response.set_etag(etag)
    immutable = commit_id == commit
    private = "private" if current_app.config.get("TULIP_TOKEN") else "public"
    response.headers["Cache-Control"] = (
        f"{private}, max-age=31536000, immutable" if immutable else f"{private}, no-cache"
    )
    return response
