"""Where an audit's embeddings come from: the on-disk cache, class folders on disk, and Embed's
output in a store (a stand-in Embed, so no backbone runs)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from auditor.sources import (
    class_files_in_dir,
    embed_images,
    embed_output_for,
    embeddings_for_commit,
    records_from_backend,
    stray_records,
)
from pipelines.errors import TulipError
from tests.stand_ins import embed_spec
from training.embedding_cache import EmbeddingCache


def test_the_cache_keeps_entries_by_architecture_and_hash_and_ignores_a_torn_file(tmp_path):
    cache = EmbeddingCache(tmp_path / "cache")
    entry = {"status": "ok", "reason": None, "image": None, "embedding": [0.5, 0.25]}
    cache.put("mobilenet_0.25_224", "ab" * 32, entry)
    assert cache.get("mobilenet_0.25_224", "ab" * 32) == entry
    assert cache.get("mobilenet_1.0_224", "ab" * 32) is None
    assert not list((tmp_path / "cache").rglob(".tmp-*"))  # written atomically
    path = next((tmp_path / "cache").rglob("*.json"))
    path.write_text('{"status": "ok", "embed')  # a torn write from a killed process
    assert cache.get("mobilenet_0.25_224", "ab" * 32) is None


def test_class_folders_on_disk_take_the_top_folder_as_the_label(tmp_path):
    for rel in ("daisy/1.jpg", "daisy/sub/2.jpg", "roses/3.jpg", "notes.txt", "README.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(rel.encode())
    images, stray = class_files_in_dir(tmp_path)
    assert [p for p, _ in images] == ["/daisy/1.jpg", "/daisy/sub/2.jpg", "/roses/3.jpg"]
    assert [p for p, _ in stray] == ["/notes.txt"]  # README is documentation, not data
    [record] = stray_records(stray)
    assert (record.label, record.status, record.size) == ("", "unreadable", len(b"notes.txt"))
    assert "outside any class folder" in record.reason
    with pytest.raises(TulipError, match="is not a directory of class folders"):
        class_files_in_dir(tmp_path / "notes.txt")


def test_a_full_cache_embeds_nothing_and_labels_nested_images_by_their_top_folder(
    tmp_path, monkeypatch
):
    import training.backbones

    def no_backbone(*_a, **_k):
        raise AssertionError("a full cache must not load a backbone")

    monkeypatch.setattr(training.backbones, "load_embedder", no_backbone)
    from auditor.sources import _sha256

    cache = EmbeddingCache(tmp_path / "cache")
    files = []
    for i, rel in enumerate(("daisy/1.jpg", "daisy/sub/2.jpg")):
        local = tmp_path / "photos" / rel
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(f"image {i}".encode())
        cache.put("arch", _sha256(local), {"status": "ok", "embedding": [float(i), 1.0]})
        files.append(("/" + rel, local))
    seen = []
    data = embed_images(
        files, architecture="arch", cache=cache, progress=lambda d, t: seen.append((d, t))
    )
    assert data.labels == ["daisy", "daisy"] and data.paths == ["/daisy/1.jpg", "/daisy/sub/2.jpg"]
    np.testing.assert_array_equal(data.vectors, [[0.0, 1.0], [1.0, 1.0]])
    assert seen == [(2, 2)]


@pytest.fixture
def embedded(store, run_jobs):
    store.create_repo("flower_photos")
    store.create_pipeline(embed_spec(sys.executable))
    with store.start_commit("flower_photos") as w:
        w.put_bytes("/daisy/1.jpg", b"one")
        w.put_bytes("/daisy/sub/2.jpg", b"two")
        w.put_bytes("/notes.txt", b"stray")
        first = w.id
    run_jobs(store)
    return store, first


def test_embeds_output_for_exactly_this_data_commit_is_found(embedded):
    store, first = embedded
    assert embed_output_for(store, "flower_photos", first) == first
    assert embed_output_for(store, "label_reference", first) is None  # not from that repo
    assert embed_output_for(store, "flower_photos", "0" * 32) is None
    with store.start_commit("flower_photos") as w:
        w.put_bytes("/roses/3.jpg", b"three")
        pending = w.id
    assert embed_output_for(store, "flower_photos", pending) is None  # not computed yet


def test_embeddings_for_a_commit_come_from_embed_with_the_stray_files_as_unreadable(embedded):
    store, first = embedded
    data, source = embeddings_for_commit(
        store, "flower_photos", first, architecture=None, cache=None
    )
    assert source == f"Embed@{first}"
    assert data.paths == ["/daisy/1.jpg", "/daisy/sub/2.jpg"] and data.labels == ["daisy"] * 2
    assert [(r.path, r.status) for r in data.unreadable] == [("/notes.txt", "unreadable")]
    assert records_from_backend(store, "Embed", first).architecture == "stand_in"
