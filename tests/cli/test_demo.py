"""`tulip demo` end to end, as a user runs it: a subprocess, a fresh folder, real pipelines.

On the shared flower photos (60 a class), as CI has them.
"""

from __future__ import annotations

import pytest

from tests.cli.demo_story import assert_story, quiet_tensorflow, run_demo

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200), pytest.mark.cost(360)]


def test_demo_on_the_shared_flower_photos(tmp_path, flowers):
    result, stderr = run_demo(tmp_path, {"TULIP_DEMO_DATA": str(flowers)}, "--max-per-class", "60")
    assert result["data"]["kind"] == "env"
    assert result["architecture"] == "mobilenet_0.25_224"
    assert_story(result, tmp_path / "demo", ends_in_pass=True)
    assert "Round 2" in stderr and "orchids" in stderr
    quiet_tensorflow(stderr, result["store"])
