"""The review basket in a real headless Chromium against a real `tulip serve`: the keyboard
picks a finding and relabels it, a click renames a class, Preview shows the dry run, Apply
lands one fix commit, and the page names it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reports.cdp import Browser, chromium_path
from tests.reports.review_store import build_review_store

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(chromium_path() is None, reason="needs the Debian chromium package"),
]
pytest.importorskip("websocket", reason="the CDP client needs websocket-client")
TOKEN = "review-browser-token"


@pytest.fixture
def served(tmp_path, flowers, monkeypatch):
    monkeypatch.setenv("TULIP_NO_AUTORUN", "1")
    rs = build_review_store(tmp_path / "store", flowers)
    exe = shutil.which("tulip", path=str(Path(sys.executable).parent)) or "tulip"
    log = tmp_path / "serve.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [exe, "--root", str(rs.root), "serve", "--port", "0", "--token", TOKEN],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env={**os.environ, "TULIP_NO_AUTORUN": "1"},
        )
    line = proc.stdout.readline()
    m = re.search(r"at (http://127\.0\.0\.1:\d+/)\?token=" + TOKEN, line)
    if not m:
        proc.kill()
        raise AssertionError(f"tulip serve said {line!r}; stderr: {log.read_text()}")
    browser = Browser(tmp_path / "profile")
    try:
        base = m.group(1).rstrip("/")
        browser.goto(f"{base}/?token={TOKEN}")
        yield rs, base, browser
    finally:
        browser.close()
        proc.terminate()
        proc.wait(10)


def test_keyboard_relabel_click_rename_preview_and_apply(served, tmp_path):
    from pipelines.embedded.store import EmbeddedStore

    rs, base, b = served
    b.goto(f"{base}/audits/audits/{rs.audit_commit}")
    order = b.eval(
        "Array.from(document.querySelectorAll('li.finding')).map(li => li.dataset.finding)"
    )
    assert set(order) == {rs.label_issue, rs.overlap}
    # keyboard: j moves to each finding in turn; r on the label issue relabels to its suggestion
    for _ in range(order.index(rs.label_issue) + 1):
        b.press("j")
    assert b.eval("document.querySelector('li.finding.current').dataset.finding") == rs.label_issue
    b.press("r")
    basket = json.loads(b.eval("document.querySelector('#review-form textarea').value"))
    assert basket == [{"finding": rs.label_issue, "action": "relabel", "to": "tulips"}]
    # x then replaces it (one decision per finding); a click on relabel puts it back
    b.press("x")
    basket = json.loads(b.eval("document.querySelector('#review-form textarea').value"))
    assert basket == [{"finding": rs.label_issue, "action": "exclude"}]
    b.click(
        f'li.finding[data-finding="{rs.label_issue}"] button[data-action=relabel]', navigates=False
    )
    # a click on the class-level finding's rename
    b.click(f'li.finding[data-finding="{rs.overlap}"] button[data-action=rename]', navigates=False)
    assert b.eval("document.querySelectorAll('.basket-items li').length") == 2
    # Preview: a dry run from the server, shown in place, nothing changed
    b.click("#review-form button.preview", navigates=False)
    text = b.wait_for(
        "(t => t.includes('Dry run') && t)(document.getElementById('review-preview').innerText)"
    )
    assert "move /roses/t3.jpg → /tulips/t3.jpg" in text
    assert "merge /orchids/ → /tulips/: 2 files" in text  # into a class that exists
    store = EmbeddedStore(rs.root)
    try:
        assert store.resolve("flower_photos@master").id == rs.data_commit
    finally:
        store.close()
    # Apply: one fix commit, named on the page it lands on
    b.eval("document.querySelector('#review-form input[name=by]').value = 'browser-steward'")
    b.click("#review-form button.apply")
    shown = b.eval("document.querySelector('code.fix-id').textContent")
    store = EmbeddedStore(rs.root)
    try:
        head = store.resolve("flower_photos@master")
        files = {f.path for f in store.walk_files("flower_photos", head.id)}
    finally:
        store.close()
    assert shown == head.id and head.parent == rs.data_commit and head.origin == "USER"
    assert head.metadata["tulip.review.by"] == "browser-steward"
    assert head.metadata["tulip.review.audit"] == f"audits@{rs.audit_commit}"
    assert "/tulips/t3.jpg" in files and not any(p.startswith("/orchids/") for p in files)
    assert b.dialogs == []
    b.click("a.fix-commit")
    assert b.eval("location.pathname") == f"/commits/flower_photos/{head.id}"
    b.screenshot(tmp_path / "review.png")
