"""The decode/embed pipeline: order kept, failures reported in line, work ahead bounded."""

from __future__ import annotations

import threading

import numpy as np

from tests.training.flowers import DS_STORE, flower_source
from training.embedding import embed_files


class MeanColourEmbedder:
    """A stand-in backbone (plain numpy) to test the pipeline mechanics, not the network."""

    name = "mean-colour"
    image_size = (32, 32)
    dim = 3

    def __init__(self):
        self.batches: list[int] = []

    def embed(self, pixels):
        self.batches.append(len(pixels))
        return pixels.reshape(len(pixels), -1, 3).mean(axis=1).astype(np.float32)


def test_results_come_back_in_order_with_reasons_in_line(tmp_path):
    photos = sorted((flower_source() / "roses").glob("*.jpg"))[:10]
    bad = tmp_path / ".DS_Store"
    bad.write_bytes(DS_STORE)
    missing = tmp_path / "gone.jpg"
    paths = [*photos[:5], bad, missing, *photos[5:]]
    emb = MeanColourEmbedder()
    results = list(embed_files(paths, emb, batch_size=4, workers=2))
    assert [r.path for r in results] == paths
    assert [r.ok for r in results] == [True] * 5 + [False, False] + [True] * 5
    assert results[5].reason.startswith("not an image") and results[5].size == len(DS_STORE)
    assert results[6].reason.startswith("cannot read file")
    assert results[0].info.format == "JPEG" and len(results[0].sha256) == 64
    assert sum(emb.batches) == 10 and max(emb.batches) <= 4


def test_decoding_runs_a_bounded_distance_ahead_of_inference():
    photo = sorted((flower_source() / "daisy").glob("*.jpg"))[0]
    pulled = 0
    lock = threading.Lock()

    def paths():
        nonlocal pulled
        for _ in range(400):
            with lock:
                pulled += 1
            yield photo

    emb = MeanColourEmbedder()
    ahead = []
    for i, _ in enumerate(embed_files(paths(), emb, batch_size=8, prefetch=2)):
        ahead.append(pulled - i)
    assert max(ahead) <= (2 + 2) * 8 + 1  # queue + batch being built + batch being embedded
