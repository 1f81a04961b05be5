"""Hostile strings, hostile paths, the access token and CSRF."""

from __future__ import annotations

import json
import re

import pytest

from tests.reports.scenario import EVIL_CLASS

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def evil_audit(tmp_path, monkeypatch):
    """A store whose audit document names a class `<script>alert(1)</script>` everywhere."""
    from pipelines.embedded.store import EmbeddedStore
    from reports import create_app

    monkeypatch.setenv("TULIP_NO_AUTORUN", "1")
    store = EmbeddedStore(tmp_path / "store")
    store.create_repo("Audit")
    doc = {
        "schema": "tulip.audit/v1",
        "verdict": "fail",
        "data": {"repo": "data", "branch": "master", "commit": "a" * 32},
        "reference": None,
        "summary": {"images": 3, "classes": {SCRIPT: 2, "tulips": 1}},
        "findings": [
            {
                "check": "class_overlap",
                "severity": "fail",
                "classes": [SCRIPT, "tulips"],
                "score": 0.9,
                "files": [f"/{SCRIPT}/1.jpg"],
                "introduced_by": [{"repo": "data", "commit": "a" * 32}],
                "message": f"{SCRIPT} looks like tulips </script><script>alert(2)</script>",
            }
        ],
        "overlap": {"labels": [SCRIPT, "tulips"], "matrix": [[1, 0.9], [0.9, 1]]},
        "projection": {
            "method": "pca",
            "points": [
                {"x": 0, "y": 0, "label": SCRIPT, "path": f"/{SCRIPT}/1.jpg"},
                {"x": 1, "y": 1, "label": "tulips", "path": "/tulips/<b>.jpg"},
            ],
        },
    }
    with store.start_commit("Audit", description=SCRIPT) as w:
        w.put_bytes("/audit.json", json.dumps(doc).encode())
    cid = store.resolve("Audit@master").id
    store.close()
    app = create_app({"TULIP_ROOT": str(tmp_path / "store"), "TESTING": True})
    return app.test_client(), cid, doc


def _no_live_markup(html: str) -> None:
    assert SCRIPT not in html
    assert "<script>alert" not in html
    assert "onerror=alert" not in html.replace("onerror=alert(1)&gt;", "")
    # The only script elements are our own static file.
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/tulip.js" defer>']


def test_script_named_class_renders_as_text_in_page_svg_and_tables(evil_audit):
    client, cid, _doc = evil_audit
    html = client.get(f"/audits/Audit/{cid}").get_data(as_text=True)
    _no_live_markup(html)
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    heatmap = html[html.index('<svg class="heatmap"') :]
    assert escaped in heatmap[: heatmap.index("</svg>")]  # SVG text is escaped too
    assert f'data-label="{escaped}"' in html  # and attribute values
    assert f'<td class="label">{escaped}</td>' in html
    assert (
        client.get(f"/api/audits/Audit/{cid}").get_json()["audit"]["summary"]["classes"][SCRIPT]
        == 2
    )


def test_script_in_commit_description_is_escaped_everywhere(evil_audit):
    client, cid, _doc = evil_audit
    for url in (f"/commits/Audit/{cid}", "/repos/Audit", f"/lineage/Audit/{cid}", "/"):
        html = client.get(url).get_data(as_text=True)
        _no_live_markup(html)


def test_evil_class_folder_from_the_real_scenario_stays_text(client, scenario):
    html = client.get(f"/commits/flower_photos/{scenario.orchids_commit}").get_data(as_text=True)
    assert EVIL_CLASS not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    audit = client.get(f"/audits/Audit/{scenario.audit_commit}").get_data(as_text=True)
    assert EVIL_CLASS not in audit and "&lt;img src=x onerror=alert(1)&gt;" in audit


@pytest.mark.parametrize(
    "path",
    [
        "../../../../etc/passwd",
        "orchids/../../../etc/passwd",
        "%2e%2e/%2e%2e/etc/passwd",
        "..%2f..%2fetc%2fpasswd",
        "orchids/%2e%2e/%2e%2e/tulip.db",
        "..",
    ],
)
def test_dot_dot_in_a_thumbnail_path_is_refused(client, scenario, path):
    r = client.get(f"/thumbs/flower_photos/{scenario.orchids_commit}/{path}")
    assert r.status_code in (400, 404)
    assert b"root:" not in r.data and b"SQLite" not in r.data


def test_thumbnail_of_a_non_image_or_missing_file(client, scenario):
    assert client.get(f"/thumbs/Audit/{scenario.audit_commit}/audit.json").status_code == 415
    assert (
        client.get(f"/thumbs/flower_photos/{scenario.orchids_commit}/nope.jpg").status_code == 404
    )
    assert (
        client.get(f"/thumbs/flower_photos/{scenario.orchids_commit}/NUL%00.jpg").status_code == 400
    )


def test_token_is_required_on_every_route_including_static_and_thumbnails(app_factory, scenario):
    client = app_factory(TULIP_TOKEN="s3cret-token").test_client()
    d = client.get(
        f"/api/commits/flower_photos/{scenario.orchids_commit}",
        headers={"Authorization": "Bearer s3cret-token"},
    ).get_json()
    thumb = f"/thumbs/flower_photos/{scenario.orchids_commit}{d['files'][0]['path']}"
    routes = [
        "/",
        "/api/overview",
        "/healthz",
        "/static/tulip.css",
        "/static/tulip.js",
        thumb,
        f"/audits/Audit/{scenario.audit_commit}",
        f"/lineage/flower_photos/{scenario.orchids_commit}",
        "/alerts",
        "/nonexistent",
    ]
    for url in routes:
        r = client.get(url)
        assert r.status_code == 401, url
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert client.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = client.get(url, headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == (404 if url == "/nonexistent" else 200), url
    assert client.post("/alerts/x/retry").status_code == 401


def test_token_in_the_url_sets_an_httponly_strict_cookie_and_redirects_it_away(app_factory):
    client = app_factory(TULIP_TOKEN="s3cret-token").test_client()
    r = client.get("/audits?x=1&token=s3cret-token")
    assert r.status_code == 303
    assert r.headers["Location"] == "/audits?x=1"  # the token leaves the address bar
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "s3cret-token" not in cookie  # the cookie is an HMAC of the token
    assert client.get("/").status_code == 200  # the test client keeps the cookie
    assert client.get("/static/tulip.css").status_code == 200
    client.delete_cookie("tulip_token")
    assert client.get("/").status_code == 401
    wrong = client.get("/?token=guess")
    assert wrong.status_code == 401 and "Set-Cookie" not in wrong.headers


def test_retry_needs_post_and_the_session_csrf_token(app_factory, scenario):
    app = app_factory()
    client = app.test_client()
    assert client.get("/alerts/abc/retry").status_code == 405  # GET never changes state
    r = client.post("/alerts/abc/retry")
    assert r.status_code == 403 and b"CSRF" in r.data
    page = client.get("/alerts").get_data(as_text=True)
    assert 'name="csrf_token"' in page or "No events yet" in page
    with client.session_transaction() as sess:
        sess["csrf_token"] = "known-token"
    assert client.post("/alerts/abc/retry", data={"csrf_token": "wrong"}).status_code == 403
    r = client.post("/alerts/abc/retry", data={"csrf_token": "known-token"})
    assert r.status_code == 404  # past the guard; the event does not exist
    r = client.post("/alerts/abc/retry", headers={"X-CSRF-Token": "known-token"})
    assert r.status_code == 404
    other = app.test_client()  # another browser: its own session, no token
    assert other.post("/alerts/abc/retry", data={"csrf_token": "known-token"}).status_code == 403


def test_security_headers(client):
    r = client.get("/")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"


def test_without_a_token_only_loopback_host_names_are_answered(client):
    assert client.get("/", headers={"Host": "127.0.0.1:8080"}).status_code == 200
    assert client.get("/", headers={"Host": "[::1]:8080"}).status_code == 200
    assert client.get("/", headers={"Host": "localhost"}).status_code == 200
    r = client.get("/", headers={"Host": "attacker.example:8080"})
    assert r.status_code == 403 and b"DNS" not in r.data and b"only to localhost" in r.data


def test_with_a_token_any_host_name_is_fine(app_factory):
    client = app_factory(TULIP_TOKEN="t0ken").test_client()
    r = client.get(
        "/healthz", headers={"Host": "reports.internal", "Authorization": "Bearer t0ken"}
    )
    assert r.status_code == 200
