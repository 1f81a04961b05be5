"""The report pages in a real headless Chromium, served by a real `tulip serve` with a token."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reports.cdp import Browser, chromium_path
from tests.reports.scenario import EVIL_CLASS, EVIL_DESCRIPTION

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(chromium_path() is None, reason="needs the Debian chromium package"),
]
pytest.importorskip("websocket", reason="the CDP client needs websocket-client")
TOKEN = "browser-test-token"


@pytest.fixture(scope="module")
def server(scenario, tmp_path_factory):
    """`tulip serve` for real: port 0, a token, output read for the address."""
    exe = shutil.which("tulip", path=str(Path(sys.executable).parent)) or "tulip"
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with open(log, "wb") as err:  # a file, not a pipe nobody reads
        proc = subprocess.Popen(
            [exe, "--root", str(scenario.root), "serve", "--port", "0", "--token", TOKEN],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    line = proc.stdout.readline()
    m = re.search(r"at (http://127\.0\.0\.1:\d+/)\?token=" + TOKEN, line)
    if not m:
        proc.kill()
        raise AssertionError(f"tulip serve said {line!r}; stderr: {log.read_text()}")
    yield m.group(1).rstrip("/")
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


@pytest.fixture(scope="module")
def signed_in(browser, server):
    """Visit the token URL once: the cookie it sets carries every later request."""
    browser.goto(f"{server}/?token={TOKEN}")
    assert browser.eval("location.search") == ""  # redirected: the token left the address bar
    return server


def test_overview_lists_audits_with_verdicts(browser, signed_in, scenario, tmp_path):
    browser.goto(f"{signed_in}/")
    assert browser.eval("document.querySelector('h1').textContent") == "Overview"
    verdicts = browser.eval(
        "Array.from(document.querySelectorAll('table.audits .badge')).map(b => b.textContent)"
    )
    assert verdicts == ["fail", "pass"]
    assert browser.eval("document.querySelectorAll('.timeline .dot').length") == 2
    browser.screenshot(tmp_path / "overview.png")


def test_audit_page_of_the_orchids_scenario(browser, signed_in, scenario, tmp_path):
    browser.goto(f"{signed_in}/audits/Audit/{scenario.audit_commit}")
    assert browser.eval("document.querySelector('.verdict-word').textContent.trim()") == "FAIL"
    finding = browser.eval(
        "document.querySelector('li.finding[data-check=class_overlap] .message').textContent"
    )
    assert "orchids" in finding and "tulips" in finding
    labels = browser.eval(
        "Array.from(document.querySelectorAll('li.finding[data-check=class_overlap] .label')).map(e => e.textContent)"
    )
    assert labels == ["orchids", "tulips"]
    images = browser.wait_images("#comparisons img")
    assert len(images) == 12
    assert all(i["w"] > 0 and i["h"] > 0 for i in images), images  # really decoded JPEGs
    assert browser.eval("document.querySelectorAll('svg.scatter circle').length") == 26
    assert browser.eval("document.querySelectorAll('svg.heatmap rect').length") == 25
    # The hostile class folder is text on the page, and nothing ran.
    assert EVIL_CLASS in browser.eval("document.body.innerText")
    assert browser.eval("document.querySelectorAll('img[src=x]').length") == 0
    assert browser.dialogs == []
    # Picking a legend entry highlights that class on the map.
    browser.eval("document.querySelector('.legend-item[data-label=orchids]').click()")
    assert browser.eval("document.querySelectorAll('svg.scatter circle.picked').length") == 6
    browser.screenshot(tmp_path / "audit.png")


def test_lineage_page_click_through_to_a_commit(browser, signed_in, scenario, tmp_path):
    browser.goto(f"{signed_in}/lineage/flower_photos/{scenario.orchids_commit}")
    nodes = browser.eval("Array.from(document.querySelectorAll('g.node')).map(g => g.dataset.node)")
    assert f"commit:Audit@{scenario.audit_commit}" in nodes
    assert f"commit:Convert@{scenario.convert_commit}" in nodes
    assert browser.eval("document.querySelector('g.node.center') !== null")
    failed = browser.eval(
        "Array.from(document.querySelectorAll('g.node.status-fail')).map(g => g.dataset.node)"
    )
    assert failed == [f"commit:Audit@{scenario.audit_commit}"]
    browser.screenshot(tmp_path / "lineage.png")
    browser.click(f'g.node[data-node="commit:Audit@{scenario.audit_commit}"] rect')
    assert browser.eval("location.pathname") == f"/commits/Audit/{scenario.audit_commit}"
    assert "Commit Audit@" in browser.eval("document.querySelector('h1').textContent")
    browser.click("a.to-audit")
    assert browser.eval("location.pathname") == f"/audits/Audit/{scenario.audit_commit}"
    browser.click(f'a.commit[href="/commits/flower_photos/{scenario.orchids_commit}"]')  # the blame
    text = browser.eval("document.querySelector('dd.description').textContent")
    assert text == EVIL_DESCRIPTION and browser.dialogs == []
    thumbs = browser.wait_images("table.files img")
    assert thumbs and all(i["w"] > 0 for i in thumbs)
    browser.screenshot(tmp_path / "commit.png")


def test_without_the_cookie_nothing_is_served(tmp_path_factory, server):
    fresh = Browser(tmp_path_factory.mktemp("no-cookie"))
    try:
        fresh.goto(f"{server}/")
        assert fresh.eval("document.querySelector('.error-status').textContent") == "401"
    finally:
        fresh.close()


def test_standalone_report_renders_from_file_with_the_network_off(scenario, tmp_path):
    from pipelines.embedded.store import EmbeddedStore

    store = EmbeddedStore(scenario.root)
    try:
        html = store.get_file("Audit", scenario.audit_commit, "/report.html")
    finally:
        store.close()
    report = tmp_path / "report.html"
    report.write_bytes(html)
    offline = Browser(tmp_path / "offline-profile", offline=True)
    try:
        offline.goto(report.as_uri())
        assert offline.eval("document.querySelector('.verdict-word').textContent.trim()") == "FAIL"
        images = offline.wait_images("#comparisons img")
        assert len(images) == 12 and all(i["w"] > 0 for i in images)
        assert all(i["src"].startswith("data:image/jpeg") for i in images)
        assert offline.eval("document.querySelectorAll('svg.scatter circle').length") == 26
        doc = offline.eval("JSON.parse(document.getElementById('audit-data').textContent)")
        assert doc["verdict"] == "fail" and EVIL_CLASS in doc["summary"]["classes"]
        assert EVIL_CLASS in offline.eval("document.body.innerText") and offline.dialogs == []
        outside = [u for u in offline.requests if not u.startswith(("file:", "data:", "blob:"))]
        assert outside == []
        offline.screenshot(tmp_path / "standalone.png")
    finally:
        offline.close()


def test_alerts_page_retry_goes_through_post_and_csrf(browser, signed_in, scenario, tmp_path):
    """The scenario's audits raised audit.failed/warned events (the auditor's job hook); the
    Retry button is a POSTed form with the session's CSRF token."""
    browser.goto(f"{signed_in}/alerts")
    types = browser.eval(
        "Array.from(document.querySelectorAll('table.events code')).map(c => c.textContent)"
    )
    if not types:
        pytest.skip("no events: the auditor's job hook is not registered in this install")
    assert "audit.failed" in types
    assert (
        browser.eval("document.querySelector('form.inline input[name=csrf_token]').value.length")
        > 20
    )
    browser.click("form.inline button.retry")
    assert browser.eval("location.pathname") == "/alerts"
    assert "Nothing to re-arm" in browser.eval(
        "document.getElementById('retry-result').textContent"
    )
    browser.screenshot(tmp_path / "alerts.png")
