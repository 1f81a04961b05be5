"""One history, two backends, one lineage.

The same history (the seed story in miniature, with the stage scripts of
``tests/auditor/lineage_history.py``) is played on an ``EmbeddedStore`` run by the real local
engine, and on ``PachydermBackend`` talking over gRPC to the pachd protocol double, whose jobs
run the same specs' commands. The lineage graph (``auditor.lineage.build_graph``) and a plainer
canonical view (commits, parents, direct provenance, file contents, commit sets, file history,
jobs) must then be identical once commit IDs are replaced by the step that made them.

Differences that are Pachyderm's and not ours, and so are normalised here:

* file hashes: pachd hashes chunk hashes, not the bytes; hashes are mapped to content digests;
* spec commits and spec repos: pachd makes "an empty spec commit to mark the update" with no
  description (pps api_server.go); the embedded store describes them;
* why a job failed: both backends report the stage's last stderr line ("gate blocked: ...",
  which blame looks for), in their own wording around it (pachd names the failed datum; the
  backend adds the line from the job's logs).

The history puts data in each input repo before a pipeline reads it. (Created over an empty
repo, a pipeline makes pachd give that repo's new branch an empty AUTO commit, which the
embedded store does not; ``test_pachyderm_backend`` covers that quirk.)
"""

from __future__ import annotations

import hashlib
import json
import re
import textwrap
from collections.abc import Callable

import pytest

from pipelines.backend import Backend
from pipelines.pachyderm import PachydermBackend
from pipelines.runner import Runner
from tests.auditor.lineage_history import AUDIT, CONVERT, TRAIN, _spec, jpeg
from tests.pachyderm_double import PachdProtocolDouble
from tests.pachyderm_double.transforms import run_spec_command

ID = re.compile(r"[0-9a-f]{32}")
HEX64 = re.compile(r"[0-9a-f]{64}")


def play(b: Backend, run_jobs: Callable[[], object], scripts) -> dict[str, str]:
    """The history; returns step label -> commit(-set) ID."""
    ids: dict[str, str] = {}

    def commit(label, repo, description, puts, deletes=()):
        with b.start_commit(repo, "master", description=description) as w:
            for path in deletes:
                w.delete(path)
            for path, data in puts.items():
                w.put_bytes(path, data)
        run_jobs()
        ids[label] = w.id

    b.create_repo("flower_photos", description="photos, one folder per class")
    b.create_repo("label_reference", description="reference gallery")
    commit("ref0", "label_reference", "gallery", {"/tulips/r1.jpg": jpeg("ref", 1)})
    commit(
        "initial",
        "flower_photos",
        "initial",
        {f"/{c}/{i}.jpg": jpeg(c, i) for c in ("daisy", "tulips") for i in (1, 2, 3)},
    )
    for spec in (
        _spec("Train", scripts["train"], ["flower_photos"]),
        _spec("Audit", scripts["audit"], ["flower_photos", "label_reference"]),
        _spec("Convert", scripts["convert"], ["Train", "Audit"]),
    ):
        info = b.create_pipeline(spec)
        run_jobs()
        ids[f"spec:{info.name}"] = info.spec_commit
    commit(
        "roses", "flower_photos", "add roses", {f"/roses/{i}.jpg": jpeg("roses", i) for i in (1, 2)}
    )
    commit(
        "orchids",
        "flower_photos",
        "add orchids",
        {f"/orchids/{i}.jpg": jpeg("tulips", 10 + i) for i in (1, 2, 3)},
    )
    commit(
        "cleanup",
        "flower_photos",
        "remove orchids, retake daisy 1",
        {"/daisy/1.jpg": jpeg("daisy", 100)},
        deletes=["/orchids"],
    )
    commit("ref1", "label_reference", "more gallery", {"/roses/r1.jpg": jpeg("ref", 2)})
    b.set_commit_metadata("Audit", ids["orchids"], {"tulip.verdict": "fail", "tulip.findings": "1"})
    return ids


@pytest.fixture(scope="module")
def scripts(tmp_path_factory):
    d = tmp_path_factory.mktemp("stage-scripts")
    out = {}
    for name, code in (("train", TRAIN), ("audit", AUDIT), ("convert", CONVERT)):
        out[name] = d / f"{name}_stage.py"
        out[name].write_text(textwrap.dedent(code))
    return out


@pytest.fixture(scope="module")
def embedded(tmp_path_factory, scripts):
    from pipelines.embedded.store import EmbeddedStore

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TULIP_NO_AUTORUN", "1")
        store = EmbeddedStore(tmp_path_factory.mktemp("parity") / "store")
        ids = play(store, lambda: Runner(store).run_until_idle(), scripts)
        yield store, ids
        store.close()


@pytest.fixture(scope="module")
def pachyderm(scripts):
    with PachdProtocolDouble(auto_run=False) as pachd:
        for name in ("Train", "Audit", "Convert"):
            pachd.transforms[name] = run_spec_command
        from pachyderm_sdk import Client

        b = PachydermBackend(Client.from_pachd_address(pachd.address), address=pachd.address)
        b.check()
        ids = play(b, pachd.run_pending, scripts)
        yield b, ids, pachd
        b.close()


def relabel(ids: dict[str, str]) -> Callable[[str], str]:
    """Commit IDs, and the 8-character short IDs of labels ("Train@1a2b3c4d"), to step labels."""
    names = {v: k for k, v in ids.items()}
    short = {v[:8]: k for k, v in ids.items()}

    def sub(text: str) -> str:
        text = ID.sub(lambda m: f"<{names.get(m.group(), 'unknown ' + m.group())}>", text)
        return re.sub(
            r"\b([0-9a-f]{8})\b",
            lambda m: f"<{short[m.group(1)]}>" if m.group(1) in short else m.group(1),
            text,
        )

    return sub


def content_digests(b: Backend, ids: dict[str, str]) -> dict[str, str]:
    """Each file hash the backend reports -> a digest of the content it stands for, with the
    commit IDs inside it (audit.json names its data commit) replaced by step labels."""
    sub = relabel(ids)
    out = {}
    for repo in b.list_repos(include_specs=True):
        for c in b.list_commits(repo.name):
            if c.finished is None:
                continue
            for f in b.walk_files(repo.name, c.id):
                if f.hash not in out:
                    text = sub(b.get_file(repo.name, c.id, f.path).decode("latin-1"))
                    out[f.hash] = hashlib.sha256(text.encode("latin-1")).hexdigest()[:16]
    return out


def normalise(value, sub: Callable[[str], str]):
    if isinstance(value, str):
        return sub(value)
    if isinstance(value, dict):
        return {normalise(k, sub): normalise(v, sub) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalise(v, sub) for v in value]
    return value


def hash_sub(b: Backend, ids: dict[str, str]) -> Callable[[str], str]:
    digests = content_digests(b, ids)
    by_prefix = {h[:16]: d for h, d in digests.items()}
    ids_sub = relabel(ids)

    def sub(text: str) -> str:
        text = HEX64.sub(lambda m: "content:" + digests.get(m.group(), "?" + m.group()), text)
        text = re.sub(
            r"(file:[^@]*@)([0-9a-f]{16})$",
            lambda m: m.group(1) + "content:" + by_prefix.get(m.group(2), "?"),
            text,
        )
        return ids_sub(text)

    return sub


def why(text: str | None) -> str | None:
    """A failure as both backends must agree on it: the stage's own sentence when there is
    one (the gate's), else just that it failed. The wording around it is each engine's."""
    if not text:
        return None
    m = re.search(r"gate blocked.*", text)
    return m.group() if m else "failed"


# -- the plain canonical view ------------------------------------------------------------------


def canonical_view(b: Backend, ids: dict[str, str]) -> dict:
    sub = hash_sub(b, ids)
    label = relabel(ids)
    view: dict = {"repos": {}, "sets": {}, "provenance": {}}
    for repo in sorted(b.list_repos(include_specs=True), key=lambda r: r.name):
        commits = []
        for c in b.list_commits(repo.name):
            entry = {
                "id": c.id,
                "branch": c.branch,
                "origin": c.origin,
                "parent": c.parent,
                "failed": why(c.error),
                "metadata": c.metadata,
                "size": c.size_bytes,
                "direct_provenance": sorted(
                    (p.repo, p.branch, label(p.id)) for p in c.direct_provenance
                ),
                "subvenance": sorted((p.repo, label(p.id)) for p in b.subvenance(repo.name, c.id)),
                "files": {f.path: f.hash for f in b.walk_files(repo.name, c.id)},
            }
            if repo.type != "spec":
                entry["description"] = c.description
                entry["diff"] = [
                    (d.path, d.change) for d in b.diff_files(repo.name, c.id, c.parent)
                ]
            commits.append(entry)
        view["repos"][repo.name] = {
            "type": repo.type,
            "pipeline": repo.pipeline,
            "commits": commits,
        }
        if commits:
            head = b.resolve(f"{repo.name}@master")
            view["provenance"][repo.name] = [(p.repo, label(p.id)) for p in b.provenance(head)]
    for label, cid in ids.items():
        view["sets"][label] = [(c.repo, c.origin) for c in b.commit_set(cid)]
    view["find"] = {
        path: [
            (p.commit.id, p.change, p.files)
            for p in b.find_commits("flower_photos", "master", path)
        ]
        for path in ("/orchids", "/daisy/1.jpg", "/tulips")
    }
    head = b.resolve("flower_photos@master").id
    view["introduced_by"] = b.introduced_by(
        "flower_photos", head, ["/daisy/1.jpg", "/daisy/2.jpg", "/roses/1.jpg"]
    )
    view["jobs"] = {
        p.name: [
            (
                j.id,
                j.state,
                j.data_processed,
                j.data_skipped,
                j.data_failed,
                j.data_total,
                j.spec_version,
            )
            for j in b.list_jobs(p.name)
        ]
        for p in b.list_pipelines()
    }
    view["pipelines"] = {
        p.name: (p.spec, p.version, p.spec_commit, p.inputs) for p in b.list_pipelines()
    }
    return normalise(view, sub)


def differences(e, p, where: str = "") -> list[str]:
    """Where two canonical forms differ, as readable paths (the first few)."""
    if isinstance(e, dict) and isinstance(p, dict):
        out = []
        for k in sorted(set(e) | set(p), key=str):
            if k not in p:
                out.append(f"{where}/{k}: only embedded: {e[k]!r}"[:300])
            elif k not in e:
                out.append(f"{where}/{k}: only pachyderm: {p[k]!r}"[:300])
            else:
                out += differences(e[k], p[k], f"{where}/{k}")
        return out
    if isinstance(e, list) and isinstance(p, list) and len(e) == len(p):
        return [
            d
            for i, (a, b) in enumerate(zip(e, p, strict=True))
            for d in differences(a, b, f"{where}[{i}]")
        ]
    return [] if e == p else [f"{where}: embedded {e!r} != pachyderm {p!r}"[:400]]


def test_the_same_history_gives_the_same_canonical_view(embedded, pachyderm):
    store, e_ids = embedded
    backend, p_ids, _ = pachyderm
    assert set(e_ids) == set(p_ids)
    e = canonical_view(store, e_ids)
    p = canonical_view(backend, p_ids)
    diff = differences(e, p)
    assert diff[:12] == [], "\n".join(diff)


def test_the_history_exercises_pachydermish_provenance(pachyderm):
    """Sanity: ref1's Audit commit lists flower_photos under its older ID, and the spec."""
    backend, ids, pachd = pachyderm
    audit = backend.inspect_commit("Audit", ids["ref1"])
    assert {(p.repo, p.id) for p in audit.direct_provenance} == {
        ("flower_photos", ids["cleanup"]),
        ("label_reference", ids["ref1"]),
        ("Audit.spec", ids["spec:Audit"]),
    }
    convert = backend.inspect_commit("Convert", ids["orchids"])
    assert convert.error  # blocked by the failing audit
    assert any(m.endswith(".meta") for m in pachd.spec_repos())  # hidden from the backend
    assert "/pps_v2.API/CreatePipelineV2" in pachd.calls


# -- the lineage graph ---------------------------------------------------------------------------

TIME_KEYS = {"created", "started", "finished", "updated"}


def canonical_graph(b: Backend, ids: dict[str, str]) -> dict:
    lineage = pytest.importorskip("auditor.lineage")
    G = lineage.build_graph(b)
    data = lineage.canonical(G, ignore=TIME_KEYS | {"backend"})
    for node in data["nodes"]:
        spec_like = node.get("kind") == "spec" or node.get("repo_type") == "spec"
        if spec_like:
            node.pop("description", None)  # pachd's spec commits and repos carry none
        if node.get("type") == "job":
            node["reason"] = (
                why(node.get("reason")) if node.get("state") != "success" else node.get("reason")
            )
        if node.get("type") == "commit":
            node["error"] = why(node.get("error"))
    return normalise(data, hash_sub(b, ids))


def test_the_same_history_gives_the_same_lineage_graph(embedded, pachyderm):
    store, e_ids = embedded
    backend, p_ids, _ = pachyderm
    e = canonical_graph(store, e_ids)
    p = canonical_graph(backend, p_ids)
    e_nodes = {n["id"]: n for n in e["nodes"]}
    p_nodes = {n["id"]: n for n in p["nodes"]}
    diff = differences(e_nodes, p_nodes)
    assert diff[:12] == [], "\n".join(diff)
    e_links = sorted(json.dumps(x, sort_keys=True) for x in e["links"])
    p_links = sorted(json.dumps(x, sort_keys=True) for x in p["links"])
    assert sorted(set(e_links) ^ set(p_links)) == []
    assert p_links == e_links  # the same edges, each as often
    assert p["graph"] == e["graph"]
    assert len(e_nodes) > 60 and len(e_links) > 150  # the history is not trivially small


# -- blame ---------------------------------------------------------------------------------------

AGO = re.compile(r"\b(\d+ (second|minute|hour|day)s? ago|just now)\b")


def canonical_blame(b: Backend, ids: dict[str, str], target: str) -> dict:
    blame = pytest.importorskip("auditor.blame")
    report = blame.blame(b, target).as_dict()
    label = relabel(ids)

    def clean(v):
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items() if k not in TIME_KEYS}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return AGO.sub("<ago>", label(v)) if isinstance(v, str) else v

    return clean(report)


@pytest.mark.parametrize("repo", ["Convert", "Train", "Audit", "flower_photos"])
def test_blame_answers_the_same_on_both_backends(embedded, pachyderm, repo):
    store, e_ids = embedded
    backend, p_ids, _ = pachyderm
    e = canonical_blame(store, e_ids, f"{repo}@{e_ids['orchids']}")
    p = canonical_blame(backend, p_ids, f"{repo}@{p_ids['orchids']}")
    diff = differences(e, p)
    assert diff == [], "\n".join(diff)
    if repo == "Convert":
        assert p["blocked"].startswith("gate blocked")  # the stage's sentence reached blame
        assert [c["id"] for c in p["commits"]][:1] == ["<orchids>"]


# -- tulip serve ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def apps(embedded, pachyderm, tmp_path_factory):
    """The report server over each backend (one store per request, as in production)."""
    reports = pytest.importorskip("reports")
    store, _ = embedded
    _, _, pachd = pachyderm
    cache = tmp_path_factory.mktemp("report-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PACHD_ADDRESS", pachd.address)
        e = reports.create_app({"TULIP_ROOT": str(store.root), "TULIP_CACHE_DIR": str(cache / "e")})
        p = reports.create_app(
            {
                "TULIP_BACKEND": "pachyderm",
                "TULIP_ROOT": str(cache / "unused"),
                "TULIP_CACHE_DIR": str(cache / "p"),
            }
        )
        yield e.test_client(), p.test_client()


@pytest.fixture(scope="module")
def subs(embedded, pachyderm):
    store, e_ids = embedded
    backend, p_ids, _ = pachyderm
    return hash_sub(store, e_ids), hash_sub(backend, p_ids)


@pytest.mark.parametrize(
    "route",
    ["/api/lineage/Convert/{orchids}", "/api/commits/Train/{roses}", "/api/audits/Audit/{orchids}"],
)
def test_serve_answers_the_same_on_both_backends(apps, embedded, pachyderm, subs, route):
    e_client, p_client = apps
    _, e_ids = embedded
    _, p_ids, _ = pachyderm
    e = e_client.get(route.format(**e_ids))
    p = p_client.get(route.format(**p_ids))
    assert e.status_code == 200, e.get_data(as_text=True)[:500]
    assert p.status_code == 200, p.get_data(as_text=True)[:500]

    def clean(v, label):
        if isinstance(v, dict):
            return {k: clean(x, label) for k, x in v.items() if k not in TIME_KEYS | {"backend"}}
        if isinstance(v, list):  # node and edge lists come sorted by raw IDs: sort again
            items = [clean(x, label) for x in v]
            if items and isinstance(items[0], dict):
                return sorted(items, key=lambda x: json.dumps(x, sort_keys=True))
            return items
        return AGO.sub("<ago>", label(v)) if isinstance(v, str) else v

    diff = differences(clean(e.get_json(), subs[0]), clean(p.get_json(), subs[1]))
    # What legitimately differs: failure wording around the stage's sentence, spec descriptions
    diff = [
        d
        for d in diff
        if "gate blocked" not in d
        and "description" not in d
        and "/error" not in d
        and "/reason" not in d
    ]
    assert diff == [], "\n".join(diff)


def test_serve_pages_render_over_pachyderm(apps, pachyderm):
    _, p_client = apps
    _, ids, _ = pachyderm
    for route in (
        "/",
        f"/lineage/Convert/{ids['orchids']}",
        f"/commits/flower_photos/{ids['orchids']}",
    ):
        r = p_client.get(route)
        assert r.status_code == 200, (route, r.get_data(as_text=True)[:300])
