"""`tulip demo` end to end, as a user runs it: a subprocess, a fresh folder, real pipelines.

No network, no photos, no weights: generated flowers and the colour-histogram featuriser.
"""

from __future__ import annotations

import pytest

from tests.cli.demo_story import assert_story, run_demo

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200), pytest.mark.cost(240)]


def test_demo_with_neither_photos_nor_weights_uses_the_colour_histogram(tmp_path):
    """No network, no photos, and an empty Keras cache: generated flowers and the weightless
    colour_histogram backbone must still tell the whole story."""
    (tmp_path / "keras").mkdir()
    env = {
        "TULIP_OFFLINE": "1",
        "TULIP_DEMO_DATA": "",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "KERAS_HOME": str(tmp_path / "keras"),
    }
    result, stderr = run_demo(tmp_path, env)
    assert result["data"]["kind"] == "generated"
    assert result["architecture"] == "colour_histogram"
    assert "GENERATED" in stderr and "colour_histogram" in stderr
    # The histogram model needs TF Lite >= 2.3 in every variant, past the iOS app's 1.13.1.
    assert_story(result, tmp_path / "demo", ios_runs_it=False)
    assert "the iOS app cannot run" in stderr
    # Every generated picture is distinct: the featuriser's calibrated near-copy threshold
    # (auditor.neighbours) must reach the Audit pipeline, or 0.80 calls some of them copies.
    copies = ("duplicate", "cross_class_duplicate", "split_leakage")
    assert not [f for r in result["rounds"] for f in r["findings"] if f["check"] in copies]
    assert not list((tmp_path / "keras").rglob("*.h5"))  # nothing was downloaded
