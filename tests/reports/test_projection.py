"""The embedding map when the audit document has none: PCA of Embed's records, cached."""

from __future__ import annotations

import json

import numpy as np

from pipelines.records import EmbeddingRecord
from reports.projection import pca_2d


def test_pca_separates_clusters_on_the_first_component():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.1, (20, 16)) + 5
    b = rng.normal(0, 0.1, (20, 16)) - 5
    coords, ratio = pca_2d(np.vstack([a, b]))
    assert coords.shape == (40, 2) and ratio[0] > 0.95
    assert (np.sign(coords[:20, 0]) != np.sign(coords[20:, 0])).all()
    assert pca_2d(np.zeros((0, 4)))[0].shape == (0, 2)


def test_audit_page_computes_the_map_from_embed_records(tmp_path, monkeypatch):
    from pipelines.embedded.store import EmbeddedStore
    from pipelines.runner import Runner
    from reports import create_app

    monkeypatch.setenv("TULIP_NO_AUTORUN", "1")
    store = EmbeddedStore(tmp_path / "store")
    rng = np.random.default_rng(1)
    store.create_repo("Embed")  # shaped like the Embed pipeline's output
    with store.start_commit("Embed") as w:
        for label, centre in (("daisy", 3.0), ("roses", -3.0)):
            for i in range(15):
                rec = EmbeddingRecord(path=f"/{label}/{i}.jpg", label=label, sha256="0" * 64, size=1,
                                      architecture="mobilenet_0.25_224",
                                      embedding=(rng.normal(centre, 0.2, 32)).astype(np.float32))  # fmt: skip
                w.put_bytes(f"/{label}/{i}.jpg.json", rec.to_json().encode())
    doc = {
        "schema": "tulip.audit/v1",
        "verdict": "pass",
        "data": {"repo": "flowers", "commit": None},
        "reference": None,
        "summary": {"images": 30, "classes": {"daisy": 15, "roses": 15}},
        "findings": [],
    }
    store.create_pipeline({"pipeline": {"name": "Audit"},
                           "transform": {"cmd": ["bash"], "stdin": [f"echo '{json.dumps(doc)}' > /pfs/out/audit.json"]},
                           "input": {"pfs": {"repo": "Embed", "glob": "/"}}})  # fmt: skip
    Runner(store).run_until_idle()
    audit = store.resolve("Audit@master").id
    store.close()
    cache = tmp_path / "cache"
    client = create_app(
        {"TULIP_ROOT": str(tmp_path / "store"), "TULIP_CACHE_DIR": str(cache)}
    ).test_client()
    d = client.get(f"/api/audits/Audit/{audit}").get_json()
    assert d["derived"]["projection"] == {"method": "pca", "points": 30}
    (cached,) = (cache / "projections").glob("Embed@*.json")
    points = json.loads(cached.read_text())["points"]
    daisy = [p["x"] for p in points if p["label"] == "daisy"]
    roses = [p["x"] for p in points if p["label"] == "roses"]
    assert max(daisy) < min(roses) or max(roses) < min(daisy)  # the classes apart on PC1
    html = client.get(f"/audits/Audit/{audit}").get_data(as_text=True)
    assert html.count("<circle") == 30
