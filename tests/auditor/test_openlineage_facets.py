"""OpenLineage as real clients read it: a namespace Marquez accepts whatever the store path,
the cluster's address on Pachyderm, and custom facets whose ``_schemaURL`` points
(``#/$defs/<Facet>``) into schema files the package ships, which the facets validate against."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from auditor import openlineage as OL
from auditor.lineage.build import build_graph
from pipelines.embedded.store import EmbeddedStore
from tests.pipelines.test_runner import pfs, pipeline, put

# Marquez's rule for namespace names (marquez.common.models.NamespaceName)
MARQUEZ_NAMESPACE = re.compile(r"^[a-zA-Z0-9_\-.:/=@;+]{1,1024}$")


@pytest.fixture
def spaced_store(tmp_path, monkeypatch, run_jobs):
    monkeypatch.setenv("TULIP_NO_AUTORUN", "1")
    s = EmbeddedStore(tmp_path / "my stores" / "flowers #1")
    s.create_repo("images")
    put(s, "images", {"/daisy/1.jpg": b"d"})
    s.create_pipeline(pipeline("Count", pfs("images"), ["ls -R /pfs/images > /pfs/out/n"]))
    run_jobs(s)
    yield s
    s.close()


def test_the_namespace_of_a_path_with_a_space_is_marquez_safe(spaced_store):
    ns = OL.namespace_for(spaced_store)
    assert MARQUEZ_NAMESPACE.match(ns), ns
    assert ns.startswith("tulip://") and ns.endswith("/my_stores/flowers__1")


def test_a_cluster_is_named_by_its_address():
    class Cluster:
        name = "pachyderm"
        address = "grpcs://pachd.example.com:30650"

    assert OL.namespace_for(Cluster()) == "pachyderm://pachd.example.com:30650"


def test_custom_facets_validate_against_the_shipped_schemas(spaced_store):
    G = build_graph(spaced_store, include_files=False)
    events = OL.run_events(G, namespace=OL.namespace_for(spaced_store))
    assert events
    seen = set()
    for event in events:
        doc = json.loads(OL.to_json_lines([event]))
        facets = [*doc["run"]["facets"].items()] + [
            (k, v) for d in doc["inputs"] + doc["outputs"] for k, v in d["facets"].items()
        ]
        for key, facet in facets:
            if not key.startswith("tulip_"):
                continue
            url, _, pointer = facet["_schemaURL"].partition("#")
            assert url.startswith(OL.FACET_SCHEMA_BASE) and pointer.startswith("/$defs/")
            name = pointer.removeprefix("/$defs/")
            schema = json.loads((OL.FACET_SCHEMA_DIR / Path(url).name).read_text())
            assert schema["$id"] == url and name in schema["$defs"]  # the pointer resolves
            jsonschema.Draft202012Validator.check_schema(schema)
            jsonschema.validate(facet, schema)
            seen.add(name)
            broken = {**facet, "commit" if "commit" in facet else "total": "not a count"}
            with pytest.raises(jsonschema.ValidationError):
                jsonschema.validate(broken, schema)
    assert seen == {"TulipCommitDatasetFacet", "TulipDatumsRunFacet"}
    shipped = {p.stem for p in OL.FACET_SCHEMA_DIR.glob("*.json")}
    assert shipped == seen


def test_an_unsafe_namespace_option_is_refused(spaced_store):
    from click.testing import CliRunner

    from tulip.cli.base import Settings
    from tulip.cli.main import cli as tulip_main

    r = CliRunner().invoke(
        tulip_main,
        ["--root", str(spaced_store.root), "lineage", "Count@master", "--openlineage",
         str(spaced_store.root.parent / "ol.jsonl"), "--namespace", "my store"],
        obj=Settings(),
    )  # fmt: skip
    assert r.exit_code == 2 and "Marquez" in r.output
