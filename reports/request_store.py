"""One backend per request, kept on ``flask.g`` and closed at teardown (as flaskr's ``db.py``).

Also the one place store errors become HTTP statuses: a missing repo, commit or file is a 404
whose message names it, a malformed path or reference (``..``, say) is a 400.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, g, jsonify, make_response, render_template, request

from pipelines.backend import Backend
from pipelines.connect import open_backend
from pipelines.errors import (
    BranchNotFound,
    CommitConflict,
    CommitNotFound,
    FileNotFound,
    InvalidPath,
    InvalidReference,
    JobNotFound,
    PipelineNotFound,
    RepoNotFound,
    TulipError,
)

NOT_FOUND = (
    RepoNotFound,
    BranchNotFound,
    CommitNotFound,
    FileNotFound,
    PipelineNotFound,
    JobNotFound,
)
BAD_REQUEST = (InvalidPath, InvalidReference)


def get_backend() -> Backend:
    if "backend" not in g:
        g.backend = open_backend(
            current_app.config["TULIP_ROOT"], backend=current_app.config["TULIP_BACKEND"]
        )
    return g.backend


def close_backend(_exc: BaseException | None = None) -> None:
    backend = g.pop("backend", None)
    if backend is not None:
        backend.close()


def wants_json() -> bool:
    return request.path.startswith("/api/")


def error_response(status: int, message: str) -> Response:
    if wants_json():
        response = jsonify({"error": message, "status": status})
    else:
        response = make_response(render_template("error.html", status=status, message=message))
    response.status_code = status
    return response


def _tulip_error(e: TulipError):
    if isinstance(e, NOT_FOUND):
        return error_response(404, str(e))
    if isinstance(e, BAD_REQUEST):
        return error_response(400, str(e))
    if isinstance(e, CommitConflict):
        return error_response(409, str(e))
    return error_response(500, str(e))


def _http_error(e):
    return error_response(e.code or 500, e.description or e.name)


def init_app(app: Flask) -> None:
    from werkzeug.exceptions import HTTPException

    app.teardown_appcontext(close_backend)
    app.register_error_handler(TulipError, _tulip_error)
    app.register_error_handler(HTTPException, _http_error)
