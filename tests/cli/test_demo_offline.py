"""`tulip demo` end to end, as a user runs it: a subprocess, a fresh folder, real pipelines.

Offline and without photos: generated flowers, MobileNet from Keras' cache.
"""

from __future__ import annotations

import pytest

from tests.cli.demo_story import assert_story, run_demo

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200), pytest.mark.cost(350)]


def test_demo_offline_falls_back_to_generated_flowers(tmp_path):
    env = {"TULIP_OFFLINE": "1", "TULIP_DEMO_DATA": "", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result, stderr = run_demo(tmp_path, env)
    assert result["data"]["kind"] == "generated"
    assert "GENERATED" in stderr
    assert_story(result, tmp_path / "demo")
