"""Fixtures of the report tests: the scenario store (``scenario.py``), the app and a client."""

from __future__ import annotations

import os

import pytest

from tests.reports.scenario import Scenario, build_scenario


@pytest.fixture(scope="session")
def scenario(tmp_path_factory, flowers) -> Scenario:
    old = os.environ.get("TULIP_NO_AUTORUN")
    os.environ["TULIP_NO_AUTORUN"] = "1"
    try:
        return build_scenario(tmp_path_factory.mktemp("reports") / "store", flowers)
    finally:
        if old is None:
            os.environ.pop("TULIP_NO_AUTORUN", None)
        else:
            os.environ["TULIP_NO_AUTORUN"] = old


@pytest.fixture
def app_factory(scenario, tmp_path):
    from reports import create_app

    def make(**config):
        return create_app(
            {
                "TULIP_ROOT": str(scenario.root),
                "TULIP_CACHE_DIR": str(tmp_path / "cache"),
                "TESTING": True,
                **config,
            }
        )

    return make


@pytest.fixture
def client(app_factory):
    return app_factory().test_client()
