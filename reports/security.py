"""What stands between the report server and a hostile network or page.

* ``--token``: every route, static files and thumbnails included, needs
  ``Authorization: Bearer <token>`` or the cookie that visiting ``/?token=<token>`` once sets
  (HttpOnly, SameSite=Strict; the token leaves the address bar by a redirect). Compared in
  constant time. The cookie holds an HMAC of the token, not the token. One exception: a GET
  of one stored image (``/files/...``) whose ``sig`` is that file's HMAC under the token, as
  ``tulip review export`` writes Label Studio's image URLs.
* CSRF: the only state-changing routes are POSTs, and each needs the per-session token (kept
  in the signed session cookie) in a form field or ``X-CSRF-Token`` header. A request
  authenticated by a bearer header carries no ambient credential and is exempt.
* Without a token (a loopback server) only loopback Host names are answered, which defeats
  DNS rebinding.
* Headers: a Content-Security-Policy that allows scripts only from our own static files, no
  framing, no referrer (so a token in a URL never leaks), no MIME sniffing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlencode

from flask import Flask, current_app, redirect, request, session

from .request_store import error_response

COOKIE = "tulip_token"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def cookie_value(token: str) -> str:
    return hmac.new(token.encode(), b"tulip-report-cookie/v1", hashlib.sha256).hexdigest()


def _equal(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def _host_name(host: str) -> str:
    if host.startswith("["):  # [::1]:8080
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _require_token():
    token = current_app.config.get("TULIP_TOKEN")
    if not token:
        # No token means a loopback-only server: refuse other Host names, so a page that
        # rebinds its own DNS name to 127.0.0.1 cannot read the reports.
        allowed = LOOPBACK_NAMES | set(current_app.config.get("TULIP_ALLOWED_HOSTS") or ())
        if _host_name(request.host.lower()) not in allowed:
            return error_response(
                403,
                f"this report server answers only to localhost, not to {request.host!r}; "
                "start it with --token to serve other names",
            )
        return None
    if _equal(bearer(), token):
        return None
    if _equal(request.cookies.get(COOKIE), cookie_value(token)):
        return None
    if _signed_file(token):
        return None
    given = request.args.get("token")
    if given is not None and request.method in SAFE_METHODS and _equal(given, token):
        rest = [(k, v) for k, v in request.args.items(multi=True) if k != "token"]
        response = redirect(request.path + ("?" + urlencode(rest) if rest else ""), code=303)
        response.set_cookie(
            COOKIE,
            cookie_value(token),
            httponly=True,
            samesite="Strict",
            secure=request.is_secure,
            path="/",
        )
        return response
    response = error_response(
        401,
        "this report server needs its access token: open the address `tulip serve` printed "
        "(it ends in ?token=...), or send Authorization: Bearer <token>",
    )
    response.headers["WWW-Authenticate"] = 'Bearer realm="tulip"'
    return response


def _signed_file(token: str) -> bool:
    """A GET of one stored image whose URL ``tulip review export`` signed with this token."""
    if request.method not in SAFE_METHODS or request.endpoint != "files.raw":
        return False
    from auditor.review.interchange import file_signature
    from pipelines.errors import InvalidPath
    from pipelines.refs import normalize_path

    args = request.view_args or {}
    try:
        path = normalize_path(str(args.get("path", "")))
    except InvalidPath:
        return False
    expected = file_signature(token, str(args.get("repo")), str(args.get("commit")), path)
    return _equal(request.args.get("sig"), expected)


def csrf_token() -> str:
    """The session's CSRF token, made on first use."""
    if CSRF_FIELD not in session:
        session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return session[CSRF_FIELD]


def _check_csrf():
    if request.method in SAFE_METHODS:
        return None
    token = current_app.config.get("TULIP_TOKEN")
    if token and _equal(bearer(), token):
        return None
    expected = session.get(CSRF_FIELD)
    given = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not expected or not _equal(given, expected):
        return error_response(
            403, "missing or wrong CSRF token; reload the page and submit the form again"
        )
    return None


def _headers(response):
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cache-Control", "no-cache")
    return response


def init_app(app: Flask) -> None:
    app.before_request(_require_token)
    app.before_request(_check_csrf)
    app.after_request(_headers)
    app.jinja_env.globals["csrf_token"] = csrf_token
