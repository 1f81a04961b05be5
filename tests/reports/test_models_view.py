"""The model page tells the truth about a round the gate blocked.

A small store with shell stages: Audit writes the verdict the data asks for, Train writes a
metrics.json whose accuracy the data sets, Convert publishes unless the audit failed (then
``gate blocked: ...``, exit 3, and the commit carries the last good model over).
"""

from __future__ import annotations

import json

import pytest

from tests.stand_ins import AUDIT_SPEC, CONVERT_FROM_TRAIN_SPEC, TRAIN_SPEC


def _round(store, verdict: str, accuracy: str) -> str:
    with store.start_commit("flower_photos") as w:
        w.put_bytes("/verdict.txt", verdict.encode())
        w.put_bytes("/accuracy.txt", accuracy.encode())
        return w.id


@pytest.fixture
def rounds(store, run_jobs):
    """A good round (accuracy 0.5), then one the gate blocks (accuracy 0.25)."""
    store.create_repo("flower_photos")
    for spec in (AUDIT_SPEC, TRAIN_SPEC, CONVERT_FROM_TRAIN_SPEC):
        store.create_pipeline(spec)
    good = _round(store, "pass", "0.5")
    run_jobs(store)
    bad = _round(store, "fail", "0.25")
    run_jobs(store)
    assert "gate blocked" in store.inspect_commit("Convert", bad).error
    return good, bad


@pytest.fixture
def client(store, rounds, tmp_path):
    from reports import create_app

    app = create_app(
        {"TULIP_ROOT": str(store.root), "TULIP_CACHE_DIR": str(tmp_path / "c"), "TESTING": True}
    )
    return app.test_client()


def test_the_blocked_convert_commit_shows_a_banner_and_the_model_it_carries(client, rounds):
    good, bad = rounds
    d = client.get(f"/api/models/Convert/{bad}").get_json()
    assert d["stopped"]["state"] == "blocked"
    assert d["stopped"]["reason"] == f"gate blocked: audit {bad} failed"
    assert d["stopped"]["carried_from"]["id"] == good
    assert d["convert"]["id"] == good and d["train"]["id"] == good
    assert d["metrics"]["accuracy"] == 0.5  # the carried model's training, not this round's 0.25
    assert d["conversion"]["published"]["accuracy"] == 0.5
    html = client.get(f"/models/Convert/{bad}").get_data(as_text=True)
    assert 'id="stopped" data-state="blocked"' in html and ">BLOCKED<" in html
    assert f"gate blocked: audit {bad} failed" in html
    assert f'href="/models/Convert/{good}"' in html
    assert "25.0%" not in html and "50.0%" in html


def test_the_blocked_rounds_training_shows_its_metrics_and_no_conversion(client, rounds):
    good, bad = rounds
    d = client.get(f"/api/models/Train/{bad}").get_json()
    assert d["metrics"]["accuracy"] == 0.25 and d["train"]["id"] == bad
    assert d["convert"] is None and d["conversion"] is None
    assert d["stopped"]["commit"]["id"] == bad and d["stopped"]["carried_from"]["id"] == good
    html = client.get(f"/models/Train/{bad}").get_data(as_text=True)
    assert "model was not converted" in html
    assert 'id="conversion"' not in html


def test_a_good_round_has_no_banner(client, rounds):
    good, _bad = rounds
    d = client.get(f"/api/models/Convert/{good}").get_json()
    assert d["stopped"] is None and d["metrics"]["accuracy"] == 0.5
    assert 'id="stopped"' not in client.get(f"/models/Convert/{good}").get_data(as_text=True)


def test_a_data_commits_model_page_is_its_rounds_model(client, rounds):
    good, bad = rounds
    assert json.loads(client.get(f"/api/models/flower_photos/{good}").data)["train"]["id"] == good
    assert (
        client.get(f"/api/models/flower_photos/{bad}").get_json()["stopped"]["state"] == "blocked"
    )
    r = client.get(f"/models/Train/{'0' * 32}")
    assert r.status_code == 404 and "0000000000" in r.get_data(as_text=True)
