"""Embed keeps records by content hash: a file that only moved (a relabel, a renamed class) is a
new datum, since a datum's hash covers its path, but it is not embedded again, and when
nothing in a job is new the backbone is never loaded."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.records import EmbeddingRecord
from pipelines.worker import Datum
from training.embed import EmbedStats, LazyEmbedder, make_processor
from training.embedding_cache import EmbeddingCache


class CountingEmbedder:
    name = "colour_histogram"
    image_size = (16, 16)
    dim = 3

    def __init__(self):
        self.images = 0

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        self.images += len(pixels)
        return pixels.reshape(len(pixels), -1, 3).mean(axis=1).astype(np.float32)


def picture(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (20, 20), colour).save(buf, "PNG")
    return buf.getvalue()


def datums(root: Path, files: dict[str, bytes], tag: str) -> list[Datum]:
    """One datum per file, mounted as the local engine mounts them."""
    out = []
    for i, (path, data) in enumerate(sorted(files.items())):
        mount = root / tag / f"d{i}" / "flower_photos"
        target = mount / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        out.append(Datum(f"{tag}{i}", {"flower_photos": mount}, root / tag / f"out{i}"))
    return out


def records(ds: list[Datum]) -> dict[str, EmbeddingRecord]:
    found = {}
    for d in ds:
        for p in d.out.rglob("*.json"):
            r = EmbeddingRecord.from_json(p.read_bytes())
            found[r.path] = r
    return found


FILES = {
    "/orchids/1.png": picture((200, 30, 40)),
    "/orchids/2.png": picture((210, 40, 50)),
    "/daisy/1.png": picture((240, 240, 230)),
}


def test_a_moved_file_is_written_from_the_cache_not_embedded_again(tmp_path):
    cache = EmbeddingCache(tmp_path / "cache")
    embedder = CountingEmbedder()
    first = datums(tmp_path, FILES, "first")
    stats = EmbedStats()
    make_processor(embedder, cache=cache, stats=stats)(first)
    assert embedder.images == 3 and (stats.embedded, stats.cached) == (3, 0)
    moved = {p.replace("/orchids/", "/tulips/"): data for p, data in FILES.items()}
    second = datums(tmp_path, moved, "second")
    stats = EmbedStats()
    make_processor(embedder, cache=cache, stats=stats)(second)
    assert embedder.images == 3 and (stats.embedded, stats.cached) == (0, 3)
    before, after = records(first), records(second)
    assert sorted(after) == ["/daisy/1.png", "/tulips/1.png", "/tulips/2.png"]
    for path, r in after.items():
        old = before[path.replace("/tulips/", "/orchids/")]
        assert r.label == path.split("/")[1] and r.sha256 == old.sha256 and r.size == old.size
        assert np.array_equal(r.embedding, old.embedding) and r.image == old.image


def test_new_content_is_embedded_and_kept(tmp_path):
    cache = EmbeddingCache(tmp_path / "cache")
    embedder = CountingEmbedder()
    make_processor(embedder, cache=cache)(datums(tmp_path, FILES, "first"))
    more = {**FILES, "/daisy/2.png": picture((1, 2, 3))}
    stats = EmbedStats()
    make_processor(embedder, cache=cache, stats=stats)(datums(tmp_path, more, "second"))
    assert embedder.images == 4 and (stats.embedded, stats.cached) == (1, 3)


def test_unreadable_files_are_remembered_too(tmp_path):
    cache = EmbeddingCache(tmp_path / "cache")
    embedder = CountingEmbedder()
    bad = {"/daisy/broken.png": b"not an image"}
    make_processor(embedder, cache=cache)(datums(tmp_path, bad, "first"))
    stats = EmbedStats()
    second = datums(tmp_path, {"/roses/broken.png": bad["/daisy/broken.png"]}, "second")
    make_processor(embedder, cache=cache, stats=stats)(second)
    [r] = records(second).values()
    assert r.status == "unreadable" and r.reason and stats.cached == 1 and stats.unreadable == 1


def test_nothing_new_never_loads_the_backbone(tmp_path):
    cache = EmbeddingCache(tmp_path / "cache")
    make_processor(CountingEmbedder(), cache=cache)(datums(tmp_path, FILES, "first"))
    loads = []
    lazy = LazyEmbedder("colour_histogram", lambda: loads.append(1) or CountingEmbedder())
    moved = {p.replace("/orchids/", "/tulips/"): d for p, d in FILES.items()}
    make_processor(lazy, cache=cache)(datums(tmp_path, moved, "second"))
    assert loads == []
    make_processor(lazy, cache=cache)(datums(tmp_path, {"/x/new.png": picture((9, 9, 9))}, "third"))
    assert loads == [1]


@pytest.mark.slow
def embed_totals(log: str) -> tuple[int, int]:
    """(embedded, from the cache) summed over every Embed worker's closing line: with
    parallel datums each worker process logs its own share."""
    found = re.findall(r"Embed done: .*\((\d+) embedded, (\d+) from the content cache\)", log)
    assert found, f"no 'Embed done' line in the log:\n{log}"
    return sum(int(e) for e, _ in found), sum(int(c) for _, c in found)


def test_a_renamed_class_embeds_nothing_in_the_engine(tmp_path, monkeypatch, run_jobs):
    """The real Embed stage (colour_histogram) in the local engine: a rename reprocesses the
    moved datums from the cache; its log says 0 embedded."""
    from pipelines.embedded.store import EmbeddedStore

    monkeypatch.setenv("TULIP_NO_AUTORUN", "1")
    store = EmbeddedStore(tmp_path / "store")
    store.create_repo("flower_photos")
    with store.start_commit("flower_photos") as w:
        for path, data in FILES.items():
            w.put_bytes(path, data)
    spec = json.loads((Path(__file__).parents[2] / "pipelines" / "embed.json").read_text())
    spec["transform"]["env"]["ARCHITECTURE"] = "colour_histogram"
    spec["transform"]["cmd"][0] = sys.executable
    store.create_pipeline(spec)
    run_jobs(store)
    first = store.list_jobs("Embed")[0]
    assert embed_totals(store.logs("Embed", first.id)) == (3, 0)
    files = {f.path: f for f in store.walk_files("flower_photos", w.id)}
    with store.start_commit("flower_photos", description="rename") as w:
        w.delete("/orchids")
        for path in ("/orchids/1.png", "/orchids/2.png"):
            w.copy(path.replace("/orchids/", "/tulips/"), files[path])
    run_jobs(store)
    job = store.inspect_job("Embed", w.id)
    assert (job.data_processed, job.data_skipped) == (2, 1)
    log = store.logs("Embed", w.id)
    assert embed_totals(log) == (0, 2)
    store.close()
