"""The review basket of the served audit page (Flask test client): the decision controls,
the dry-run preview, the apply that writes one fix commit, and what it refuses."""

from __future__ import annotations

import json

import pytest

from pipelines.embedded.store import EmbeddedStore
from tests.reports.review_store import ReviewStore, build_review_store

CSRF = "review-csrf"


@pytest.fixture
def review_store(tmp_path, flowers, monkeypatch) -> ReviewStore:
    monkeypatch.setenv("TULIP_NO_AUTORUN", "1")
    return build_review_store(tmp_path / "store", flowers)


@pytest.fixture
def client(review_store, tmp_path):
    from reports import create_app

    app = create_app(
        {
            "TULIP_ROOT": str(review_store.root),
            "TULIP_CACHE_DIR": str(tmp_path / "cache"),
            "TESTING": True,
        }
    )
    c = app.test_client()
    with c.session_transaction() as sess:
        sess["csrf_token"] = CSRF
    return c


def _post(client, rs: ReviewStore, decisions, mode: str, **extra):
    return client.post(
        f"/audits/audits/{rs.audit_commit}/review",
        data={
            "csrf_token": CSRF,
            "mode": mode,
            "decisions": decisions if isinstance(decisions, str) else json.dumps(decisions),
            **extra,
        },
        headers={"Accept": "application/json"},
    )


def _files(rs: ReviewStore) -> tuple[str, set[str]]:
    store = EmbeddedStore(rs.root)
    try:
        head = store.resolve("flower_photos@master")
        return head.id, {f.path for f in store.walk_files("flower_photos", head.id)}
    finally:
        store.close()


def test_the_page_offers_decisions_per_finding_and_a_basket(client, review_store):
    page = client.get(f"/audits/audits/{review_store.audit_commit}").get_data(as_text=True)
    assert f'data-finding="{review_store.label_issue}"' in page
    assert f'data-finding="{review_store.overlap}"' in page
    assert 'data-action="relabel" data-to="tulips"' in page  # the label issue's suggestion
    assert 'data-action="rename" data-from="orchids" data-to="tulips"' in page  # class level
    assert 'id="review-form"' in page and 'name="csrf_token"' in page
    assert f'action="/audits/audits/{review_store.audit_commit}/review"' in page


def test_preview_is_a_dry_run_with_moves_and_class_counts(client, review_store):
    before = _files(review_store)
    decisions = [{"finding": review_store.label_issue, "action": "relabel"}]
    r = _post(client, review_store, decisions, "preview")
    assert r.status_code == 200, r.get_data(as_text=True)
    d = r.get_json()
    assert d["dry_run"] is True and d["commit"] is None
    assert d["moves"] == [
        {"from": "/roses/t3.jpg", "to": "/tulips/t3.jpg", "finding": review_store.label_issue,
         "reason": "relabel"}
    ]  # fmt: skip
    assert d["classes"]["before"]["roses"] == 3 and d["classes"]["after"]["roses"] == 2
    assert _files(review_store) == before  # nothing changed


def test_apply_writes_one_fix_commit_naming_the_audit(client, review_store):
    decisions = [
        {"finding": review_store.label_issue, "action": "relabel"},
        {"finding": review_store.overlap, "action": "rename", "to": "tulips"},
    ]
    r = _post(client, review_store, decisions, "apply", by="steward")
    assert r.status_code == 200, r.get_data(as_text=True)
    d = r.get_json()
    head, files = _files(review_store)
    assert d["commit"]["id"] == head and d["commit"]["repo"] == "flower_photos"
    assert "/tulips/t3.jpg" in files and "/roses/t3.jpg" not in files
    assert {"/tulips/o0.jpg", "/tulips/o1.jpg"} <= files
    assert not any(p.startswith("/orchids/") for p in files)
    store = EmbeddedStore(review_store.root)
    try:
        c = store.inspect_commit("flower_photos", head)
    finally:
        store.close()
    assert c.origin == "USER" and c.parent == review_store.data_commit
    assert c.metadata["tulip.review.audit"] == f"audits@{review_store.audit_commit}"
    assert c.metadata["tulip.review.by"] == "steward"
    assert set(json.loads(c.metadata["tulip.review.findings"])) == {
        review_store.label_issue,
        review_store.overlap,
    }


def test_the_html_apply_shows_the_new_commit(client, review_store):
    decisions = json.dumps([{"finding": review_store.label_issue, "action": "exclude"}])
    r = client.post(
        f"/audits/audits/{review_store.audit_commit}/review",
        data={"csrf_token": CSRF, "mode": "apply", "decisions": decisions},
    )
    assert r.status_code == 200
    head, files = _files(review_store)
    page = r.get_data(as_text=True)
    assert f'<code class="fix-id">{head}</code>' in page
    assert "/roses/t3.jpg" not in files


@pytest.mark.parametrize(
    ("decisions", "status", "words"),
    [
        ("not json", 400, "not valid JSON"),
        ([{"finding": "0" * 16, "action": "exclude"}], 400, "no finding"),
        ([{"finding": "x", "action": "burn"}], 400, "is not one of"),
        ("[]", 400, "no decisions"),
    ],
)
def test_bad_decisions_are_refused_and_change_nothing(
    client, review_store, decisions, status, words
):
    before = _files(review_store)
    r = _post(client, review_store, decisions, "apply")
    assert r.status_code == status
    assert words in r.get_json()["error"]
    assert _files(review_store) == before


def test_conflicting_decisions_for_one_file_are_refused(client, review_store):
    before = _files(review_store)
    decisions = [
        {"finding": review_store.label_issue, "action": "relabel"},
        {"finding": review_store.label_issue, "file": "/roses/t3.jpg", "action": "exclude"},
    ]
    r = _post(client, review_store, decisions, "apply")
    assert r.status_code == 400 and "keep one" in r.get_json()["error"]
    assert _files(review_store) == before


def test_an_apply_after_the_branch_moved_is_a_conflict(client, review_store):
    store = EmbeddedStore(review_store.root)
    try:
        with store.start_commit("flower_photos", description="someone else") as w:
            w.put_bytes("/notes.txt", b"moved")
    finally:
        store.close()
    before = _files(review_store)
    decisions = [{"finding": review_store.label_issue, "action": "relabel"}]
    r = _post(client, review_store, decisions, "apply")
    assert r.status_code == 409 and "moved since" in r.get_json()["error"]
    assert _files(review_store) == before


def test_the_basket_needs_the_csrf_token(client, review_store):
    before = _files(review_store)
    decisions = json.dumps([{"finding": review_store.label_issue, "action": "relabel"}])
    r = client.post(
        f"/audits/audits/{review_store.audit_commit}/review",
        data={"mode": "apply", "decisions": decisions, "csrf_token": "wrong"},
    )
    assert r.status_code == 403
    assert _files(review_store) == before
