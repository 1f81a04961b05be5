from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from auditor.audit import run_audit
from auditor.embedding_files import InvalidEmbeddings, read_embeddings
from auditor.external import audit_embeddings
from tests.auditor.synthetic import make


def _data():
    return make([("a", 0, 30), ("b", 1, 30), ("c", 2, 30)], seed=4)


def _npz(path, data, **override):
    arrays = {
        "paths": np.array(data.paths),
        "labels": np.array(data.labels),
        "embeddings": data.vectors,
    }
    arrays.update(override)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def _parquet(path, data, *, embeddings=None, drop=None, metadata=None):
    vectors = data.vectors if embeddings is None else embeddings
    table = pa.table(
        {
            "path": data.paths,
            "label": data.labels,
            "embedding": [list(map(float, v)) for v in vectors],
        }
    )
    if drop:
        table = table.drop([drop])
    if metadata:
        table = table.replace_schema_metadata(metadata)
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize("kind", ["npz", "parquet"])
def test_reads_both_formats_into_the_same_set(tmp_path, kind):
    data = _data()
    f = _npz(tmp_path / "e.npz", data) if kind == "npz" else _parquet(tmp_path / "e.parquet", data)
    (tmp_path / "s").mkdir()
    got = read_embeddings(f, tmp_path / "s").data
    assert got.paths == data.paths and got.labels == data.labels
    assert np.allclose(np.asarray(got.vectors), data.vectors)
    assert isinstance(got.vectors, np.memmap)  # streamed to disk, not held in memory


def test_rows_are_put_in_path_order(tmp_path):
    data = _data()
    rev = slice(None, None, -1)
    f = _npz(
        tmp_path / "e.npz",
        data,
        paths=np.array(data.paths[rev]),
        labels=np.array(data.labels[rev]),
        embeddings=data.vectors[rev],
    )
    (tmp_path / "s").mkdir()
    got = read_embeddings(f, tmp_path / "s").data
    assert got.paths == data.paths
    assert np.allclose(np.asarray(got.vectors), data.vectors)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"labels": None}, "no array 'labels'"),
        ({"embeddings": np.zeros(90)}, "must be 2-D"),
        ({"embeddings": np.zeros((80, 64))}, "80 rows but paths has 90"),
        ({"labels": np.array(["a"] * 90)}, "every row has the label 'a'"),
        ({"paths": np.array(["/a/1.jpg"] * 90)}, "89 duplicate paths"),
        ({"labels": np.array([1] * 90)}, "must hold strings"),
    ],
)
def test_bad_npz_files_are_named(tmp_path, override, message):
    f = _npz(tmp_path / "e.npz", _data(), **override)
    with pytest.raises(InvalidEmbeddings, match=message):
        read_embeddings(f, tmp_path)


def test_nan_rows_are_counted_and_located(tmp_path):
    data = _data()
    x = data.vectors.copy()
    x[[5, 7]] = np.nan
    with pytest.raises(InvalidEmbeddings, match=r"2 embeddings hold NaN .* row 5 \(/a/"):
        read_embeddings(_npz(tmp_path / "e.npz", data, embeddings=x), tmp_path)


def test_bad_parquet_files_are_named(tmp_path):
    data = _data()
    with pytest.raises(InvalidEmbeddings, match="no column 'label'"):
        read_embeddings(_parquet(tmp_path / "a.parquet", data, drop="label"), tmp_path)
    ragged = [v if i != 3 else v[:10] for i, v in enumerate(data.vectors)]
    with pytest.raises(InvalidEmbeddings, match="row 3 has 10 values"):
        read_embeddings(_parquet(tmp_path / "b.parquet", data, embeddings=ragged), tmp_path)
    (tmp_path / "c.csv").write_text("path,label\n")
    with pytest.raises(InvalidEmbeddings, match=r"neither \.npz"):
        read_embeddings(tmp_path / "c.csv", tmp_path)
    with pytest.raises(InvalidEmbeddings, match="does not exist"):
        read_embeddings(tmp_path / "missing.npz", tmp_path)


def test_audit_of_a_file_matches_the_audit_of_the_same_arrays(tmp_path):
    data = make([("a", 0, 30), ("b", 1, 30), ("same_as_a", 0, 30)], seed=4)
    result = audit_embeddings(_parquet(tmp_path / "e.parquet", data))
    direct = run_audit(data, data_ref={"repo": "x"})
    assert [f["classes"] for f in result.document["findings"]] == [
        f["classes"] for f in direct.document["findings"]
    ]
    assert result.document["schema"] == "tulip.audit/v1" and result.verdict == "fail"
    emb = result.document["embeddings"]
    assert emb["calibrated"] is False and "not one Tulip has calibrated" in emb["note"]
    assert emb["near_threshold"] == 0.8 and emb["dimensions"] == data.vectors.shape[1]


def test_a_named_calibrated_space_uses_its_threshold(tmp_path):
    data = _data()
    f = _parquet(tmp_path / "e.parquet", data, metadata={"architecture": "mobilenet_0.25_224"})
    emb = audit_embeddings(f).document["embeddings"]
    assert emb["calibrated"] is True and emb["near_threshold"] == 0.89


def test_reference_file_of_another_width_is_refused(tmp_path):
    data = _data()
    ref = make([("a", 0, 10), ("b", 1, 10)], dim=32, seed=1)
    with pytest.raises(InvalidEmbeddings, match="32-d embeddings but"):
        audit_embeddings(_npz(tmp_path / "e.npz", data), reference=_npz(tmp_path / "r.npz", ref))


def test_store_records_stream_into_a_map_equal_to_collect(tmp_path):
    import gc

    from auditor.sources import collect_mapped
    from pipelines.records import EmbeddingRecord, collect

    rng = np.random.default_rng(0)
    records = [
        EmbeddingRecord(path=f"/{c}/{i:03d}.jpg", label=c, sha256=f"{c}{i}", size=1,
                        architecture="synthetic", embedding=rng.normal(size=8).astype(np.float32))
        for i in range(40)
        for c in ("b", "a")
    ]  # fmt: skip
    records.append(
        EmbeddingRecord(path="/a/bad.jpg", label="a", sha256="x", size=1,
                        architecture="synthetic", status="unreadable", reason="truncated")
    )  # fmt: skip
    want = collect(records)
    got = collect_mapped(iter(records[::-1]), map_from=10)
    assert isinstance(got.vectors, np.memmap)
    assert got.paths == want.paths and got.labels == want.labels and got.sha256 == want.sha256
    assert np.array_equal(np.asarray(got.vectors), want.vectors)
    assert [r.path for r in got.unreadable] == ["/a/bad.jpg"]
    folder = Path(got.vectors.filename).parent
    assert folder.exists()
    del got
    gc.collect()
    assert not folder.exists()  # the scratch map goes with the array
    small = collect_mapped(iter(records), map_from=1000)
    assert not isinstance(small.vectors, np.memmap)
