"""The store side of the mobile step, on a real store: real Embed, Train, Audit and Convert
runs (``tests/mobile/release_store.py``), exports into poets-app skeletons, the lineage.

Tests that write (exports are recorded in the store) share one copy of the scenario's store;
the scenario's own store is never written to.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from auditor.lineage.build import build_graph
from auditor.lineage.graph import EXPORTED, GATED, audit_node, commit_node, export_node, model_node
from auditor.lineage.queries import upstream
from auditor.status import last_good_commit
from mobile import release
from mobile import source as source_mod
from mobile.errors import (
    ExportTargetError,
    LabelsMismatch,
    ModelNotPublished,
    NotAModel,
    OverrideWithoutReason,
)
from mobile.export import ASSET_DIRS
from mobile.identify import identify_file
from mobile.labels import read_labels
from mobile.metadata import read_manifest, verify
from mobile.release_check import check_release, split_paths
from mobile.runtime import required_runtime, runs_on
from pipelines.errors import GateBlocked
from pipelines.layout import AUDIT_FILE, EXPORTS_REPO, TFLITE_FILE
from tests.mobile.apps import poets_checkout, snapshot
from tests.mobile.release_store import no_autorun, scenario

pytestmark = [pytest.mark.slow, pytest.mark.cost(300)]

LABELS = ["daisy", "dandelion", "roses"]  # Train sorts them: the model's output order


@pytest.fixture(scope="module")
def world():
    return scenario()


@pytest.fixture(scope="module")
def store(world):
    """The scenario's store, read-only."""
    s = world.open()
    yield s
    s.close()


def _copy_model_pipeline(name: str, model: Path, input_: dict, *, labels: str) -> dict:
    """A pipeline that publishes a given model as a Convert output would, without a gate."""
    return {
        "pipeline": {"name": name},
        "description": f"{name}: publishes a fixed model with no gate (a test stand-in)",
        "transform": {
            "cmd": ["/bin/bash"],
            "stdin": [
                "set -e",
                f"cp {model} /pfs/out/optimized_graph.lite",
                f"printf '{labels}' > /pfs/out/labels.txt",
            ],
        },
        "input": input_,
    }


@pytest.fixture(scope="module")
def writable(world, store, tmp_path_factory):
    """A copy of the store, plus three stand-in pipelines that publish the good model:

    * ``Ungated`` reads Audit (whose head is the failing orchids audit) but has no gate;
    * ``Unaudited`` reads only flower_photos: no audit at all;
    * ``Mislabeled`` writes a labels.txt with two labels for the three outputs;
    * ``Stale`` reads flower_photos (the orchids commit) and ``old_audit``, a repo holding the
      passing audit of the first data commit: an audit of other data than the model's.
    """
    from pipelines.runner import Runner

    base = tmp_path_factory.mktemp("mobile-release")
    model = base / "good.lite"
    model.write_bytes(store.get_file("Convert", world.good, TFLITE_FILE))
    copy = world.copy_to(base / "store")
    from pipelines.embedded.store import EmbeddedStore

    with no_autorun():
        s = EmbeddedStore(copy)
        pfs = {"pfs": {"repo": "flower_photos", "glob": "/"}}
        audit_and_data = {"cross": [{"pfs": {"repo": "Audit", "glob": "/"}}, pfs]}
        s.create_pipeline(
            _copy_model_pipeline(
                "Ungated", model, audit_and_data, labels="daisy\\ndandelion\\nroses\\n"
            )
        )
        s.create_pipeline(
            _copy_model_pipeline("Unaudited", model, pfs, labels="daisy\\ndandelion\\nroses\\n")
        )
        s.create_pipeline(_copy_model_pipeline("Mislabeled", model, pfs, labels="daisy\\nroses\\n"))
        s.create_repo("old_audit")
        with s.start_commit("old_audit", description="the first round's audit") as w:
            w.put_bytes(AUDIT_FILE, s.get_file("Audit", world.good, AUDIT_FILE))
        stale_inputs = {"cross": [{"pfs": {"repo": "old_audit", "glob": "/"}}, pfs]}
        s.create_pipeline(
            _copy_model_pipeline(
                "Stale", model, stale_inputs, labels="daisy\\ndandelion\\nroses\\n"
            )
        )
        Runner(s).run_until_idle()
        yield s
        s.close()


@pytest.fixture
def checkout(tmp_path) -> Path:
    return poets_checkout(tmp_path / "tensorflow-for-poets-2")


def test_the_scenario_is_the_seed_story(world, store):
    good = json.loads(store.get_file("Audit", world.good, "/audit.json"))
    bad = json.loads(store.get_file("Audit", world.orchids, "/audit.json"))
    assert good["verdict"] in ("pass", "warn")
    assert bad["verdict"] == "fail"
    assert ("lookalike_class", ["orchids", "tulips"]) in [
        (f["check"], f["classes"]) for f in bad["findings"] if f["severity"] == "fail"
    ]
    assert store.inspect_commit("Convert", world.good).error is None
    blocked = store.inspect_commit("Convert", world.orchids)
    assert blocked.error and "gate blocked" in blocked.error
    assert store.resolve("Convert@master").id == world.orchids


def test_a_good_convert_commit_gives_its_model_labels_audit_and_data(world, store):
    source = source_mod.load_model_source(store, f"Convert@{world.good}")
    assert not source.blocked and source.commit.id == world.good
    assert list(source.labels) == LABELS
    train_labels = store.get_file("Train", world.good, "/retrained_labels.txt").decode()
    assert train_labels.split("\n")[:-1] == list(source.labels)
    assert source.labels_source == f"Convert@{world.good}:/labels.txt"
    reference = store.resolve("label_reference@master").id
    assert [(r.repo, r.commit) for r in source.data] == [
        ("flower_photos", world.good),
        ("label_reference", reference),
    ]
    assert source.audit.ref.commit == world.good and source.audit.ref.repo == "Audit"
    assert source.audit.ref.verdict in ("pass", "warn")
    assert source.architecture.startswith("mobilenet_0.25_224 ")
    assert release.gate_objections(source) == []


def test_a_blocked_commit_names_itself_its_reason_and_the_last_good_one(world, store, checkout):
    source = source_mod.load_model_source(store, "Convert@master")
    assert source.blocked and source.requested.id == world.orchids
    assert source.commit.id == world.good  # the carried-over bytes are the good model's
    assert last_good_commit(store, source.requested).id == world.good
    assert source.blocked_audit.ref.verdict == "fail"
    before = snapshot(checkout)
    with pytest.raises(ModelNotPublished) as caught:
        release.export_release(store, "Convert@master", android=checkout, ios=checkout)
    message = str(caught.value)
    assert f"Convert@{world.orchids}" in message  # the blocked commit
    assert "lookalike_class" in message  # why
    assert f"tulip export mobile Convert@{world.good}" in message  # what to export instead
    assert isinstance(caught.value, GateBlocked)
    assert caught.value.last_good.id == world.good
    assert snapshot(checkout) == before


def test_force_needs_a_reason_and_an_app(store, checkout):
    with pytest.raises(OverrideWithoutReason, match="--force needs --reason"):
        release.export_release(store, "Convert@master", android=checkout, force=True)
    with pytest.raises(OverrideWithoutReason):
        release.export_release(store, "Convert@master", android=checkout, force=True, reason=" ")
    with pytest.raises(ExportTargetError, match="no app folder given"):
        release.export_release(store, "Convert@master")


def test_export_lands_in_both_apps_with_labels_in_output_order_and_is_recorded(
    world, writable, checkout
):
    exported = release.export_release(
        writable, f"Convert@{world.good}", android=checkout, ios=checkout
    )
    assert exported.model_commit == world.good and not exported.forced
    # One model for both apps, one the iOS app's TFLite (1.13.1 by default) can load: the
    # published one if it can, else the variant Convert kept that it can (mobile.runtime).
    runtime = exported.record["runtime"]
    assert runtime["targets"] == {"android": "latest", "ios": "1.13.1"}
    published_needs = required_runtime(exported.source.content)
    assert runtime["published_min_runtime_version"] == published_needs
    if runs_on(published_needs, "1.13.1"):
        assert runtime["variant"] == "published"
        shipped, variant = exported.source.content, exported.source.architecture
    else:
        assert runtime["variant"] == "float32"
        shipped = writable.get_file("Convert", world.good, "/variants/float32.tflite")
        variant = f"{exported.source.metrics['architecture']} float32"
    assert runs_on(required_runtime(shipped), "1.13.1")
    for platform in ("android", "ios"):
        folder = checkout / ASSET_DIRS[platform]
        assert read_labels(folder / "labels.txt") == LABELS
        manifest = read_manifest(folder / "graph.lite")
        assert (manifest.model.repo, manifest.model.commit) == ("Convert", world.good)
        assert list(manifest.labels) == LABELS
        assert manifest.source_sha256 == hashlib.sha256(shipped).hexdigest()
        assert {r.repo for r in manifest.data} == {"flower_photos", "label_reference"}
        assert verify(folder / "graph.lite").ok
        card = json.loads((folder / "model_card.json").read_text())
        assert card["variant"] == variant
        assert card["runtime"] == runtime
        assert [row["label"] for row in card["per_class"]] == LABELS
    record = json.loads(
        writable.get_file(
            EXPORTS_REPO,
            writable.resolve(f"{EXPORTS_REPO}@master").id,
            f"/exports/{exported.export_id}.json",
        )
    )
    assert record["model"] == {"repo": "Convert", "commit": world.good}
    assert record["forced"] is False and record["targets"] == ["android", "ios"]
    assert record["sha256"] == exported.result.file("ios", "graph.lite").sha256
    G = build_graph(writable, include_files=False)
    node = export_node(exported.export_id)
    assert (model_node("Convert", world.good), node, EXPORTED) in set(G.edges(keys=True))
    assert (audit_node("Audit", world.good), node, GATED) in set(G.edges(keys=True))


def test_forced_export_of_the_blocked_commit_is_recorded_with_its_reason(world, writable, checkout):
    exported = release.export_release(
        writable,
        "Convert@master",
        android=checkout,
        force=True,
        reason="keep the beta testers on the last good model",
    )
    assert exported.forced and exported.model_commit == world.good
    assert exported.record["blocked"]["commit"] == world.orchids
    assert exported.record["blocked"]["audit"]["verdict"] == "fail"
    manifest = read_manifest(checkout / ASSET_DIRS["android"] / "graph.lite")
    assert manifest.override_reason == "keep the beta testers on the last good model"
    G = build_graph(writable, include_files=False)
    attrs = G.nodes[export_node(exported.export_id)]
    assert attrs["forced"] is True
    assert attrs["reason"] == "keep the beta testers on the last good model"


def test_a_model_whose_audit_failed_is_refused_unless_forced(world, writable, checkout):
    """Ungated published a model while its Audit input failed: the export is the gate."""
    source = source_mod.load_model_source(writable, "Ungated@master")
    assert not source.blocked and source.audit.ref.verdict == "fail"
    before = snapshot(checkout)
    with pytest.raises(GateBlocked, match=r"the gate blocks Ungated@.* failed") as caught:
        release.export_release(writable, "Ungated@master", android=checkout, ios=checkout)
    assert not isinstance(caught.value, ModelNotPublished)
    assert "lookalike_class orchids/tulips" in str(caught.value)
    assert snapshot(checkout) == before
    exported = release.export_release(
        writable, "Ungated@master", ios=checkout, force=True, reason="demo build"
    )
    manifest = read_manifest(checkout / ASSET_DIRS["ios"] / "graph.lite")
    assert manifest.audit.verdict == "fail" and manifest.override_reason == "demo build"
    assert exported.record["audit"]["verdict"] == "fail" and exported.record["forced"]


def test_an_audit_of_another_data_commit_cannot_open_the_export(world, writable, checkout):
    """Stale's audit passed, but it audited the first data commit, not the one Stale's model
    was built from (the orchids commit): the gate, the same as Convert's, refuses it."""
    source = source_mod.load_model_source(writable, "Stale@master")
    assert source.audit.document["verdict"] in ("pass", "warn")
    assert source.audit.document["data"]["commit"] == world.good
    assert ("flower_photos", world.orchids) in [(r.repo, r.commit) for r in source.data]
    before = snapshot(checkout)
    with pytest.raises(GateBlocked) as caught:
        release.export_release(writable, "Stale@master", android=checkout)
    message = str(caught.value)
    assert f"audit {world.good} is of flower_photos commit {world.good}" in message
    assert world.orchids in message and "Refusing to export" in message
    assert snapshot(checkout) == before


def test_a_model_without_audit_is_refused(writable, checkout):
    before = snapshot(checkout)
    with pytest.raises(GateBlocked, match="has no audit"):
        release.export_release(writable, "Unaudited@master", android=checkout)
    assert snapshot(checkout) == before


def test_bad_references_and_labels_leave_the_apps_untouched(writable, checkout):
    before = snapshot(checkout)
    with pytest.raises(LabelsMismatch, match="2 labels but the model has 3 outputs"):
        release.export_release(
            writable, "Mislabeled@master", android=checkout, force=True, reason="x"
        )
    with pytest.raises(NotAModel, match=r"holds no /optimized_graph\.lite"):
        release.export_release(writable, "flower_photos@master", android=checkout)
    with pytest.raises(ExportTargetError, match="no such folder"):
        release.export_release(
            writable, "Unaudited@master", android=checkout / "nowhere", force=True, reason="x"
        )
    assert snapshot(checkout) == before


def test_identify_round_trips_to_the_convert_commit_and_its_data(world, writable, checkout):
    exported = release.export_release(writable, f"Convert@{world.good}", android=checkout)
    graph = checkout / ASSET_DIRS["android"] / "graph.lite"
    known = identify_file(graph, backend=writable)
    assert known.verdict == "known"
    assert known.published["commit"] == world.good
    manifest = known.identity.manifest
    assert {(r.repo, r.commit) for r in manifest.data} == {
        (r.repo, r.commit) for r in exported.source.data
    }
    assert exported.export_id in [e["id"] for e in known.exports]
    assert "INTACT and KNOWN" in known.summary()

    offline = identify_file(graph)  # a file off a phone, no store
    assert offline.verdict == "unknown" and offline.store is None
    assert offline.identity.manifest == manifest

    raw = checkout / "raw.lite"
    raw.write_bytes(writable.get_file("Convert", world.good, TFLITE_FILE))
    bare = identify_file(raw, backend=writable)
    assert bare.verdict == "no-manifest" and bare.published["commit"] == world.good


def test_identify_says_modified_when_the_weights_changed(world, writable, checkout):
    release.export_release(writable, f"Convert@{world.good}", ios=checkout)
    data = bytearray((checkout / ASSET_DIRS["ios"] / "graph.lite").read_bytes())
    from mobile import tflite_file

    model = tflite_file.load_model(bytes(data))
    biggest = max(
        range(len(model.buffers)), key=lambda i: len(tflite_file.buffer_bytes(model, i, data))
    )
    weights = tflite_file.buffer_bytes(model, biggest, bytes(data))
    data[bytes(data).find(weights) + 7] ^= 0x5A
    tampered = checkout / "tampered.lite"
    tampered.write_bytes(bytes(data))
    found = identify_file(tampered, backend=writable)
    assert found.verdict == "modified"
    assert "weights were modified" in found.summary()
    assert found.published["commit"] == world.good  # it still says where it came from
    assert found.exports == () and found.model_exports  # no export wrote these bytes


def test_the_device_check_runs_on_the_test_split_for_both_platforms(world, store):
    from mobile.preprocess import PlatformSpec

    splits = json.loads(store.get_file("Train", world.good, "/splits.json"))
    test_paths = split_paths(splits, "test")
    raw_pixels = PlatformSpec("raw_pixels", mean=0.0, std=1.0)
    checked = check_release(store, "Convert@master", platforms=["android", "ios", raw_pixels])
    assert checked.source.blocked and checked.source.commit.id == world.good
    report = checked.report
    assert report.images == len(test_paths) > 0
    assert [p.platform for p in report.platforms] == ["android", "ios", "raw_pixels"]
    for p in report.platforms:
        assert 0.0 <= p.accuracy <= 1.0 and p.latency_ms_median > 0
    assert "raw_pixels" in report.flagged  # an injected preprocessing mismatch is flagged
    doc = checked.as_dict()
    assert doc["images_commit"] == {"repo": "flower_photos", "commit": world.good}
    assert doc["model"] == {"repo": "Convert", "commit": world.good}
    changed = [c["path"] for p in doc["platforms"] for c in p["changed"]]
    assert all(c.startswith(f"flower_photos@{world.good}:/") for c in changed)
    json.dumps(doc)


def test_lineage_links_the_published_model_back_to_its_data_commit(world, store):
    graph = build_graph(store, include_files=False)
    behind = upstream(graph, model_node("Convert", world.good))
    assert commit_node("flower_photos", world.good) in behind
    assert commit_node("Train", world.good) in behind
    assert commit_node("Audit", world.good) in behind
    # The orchids commit came later: it is not behind the good model.
    assert commit_node("flower_photos", world.orchids) not in behind
