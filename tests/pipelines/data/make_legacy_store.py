"""Build ``legacy_store.tar.gz``: a store written by Tulip before migrations were recorded
(PRAGMA user_version = 2, one ``files`` row per file per commit), for the migration tests.

Run it with the old code first on the path, from a checkout of commit 7026c8d::

    git archive 7026c8d pipelines | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old python tests/pipelines/data/make_legacy_store.py OUT.tar.gz

What it holds (the tests rely on it): repo ``photos`` with four commits on master (add two
classes, modify a file, delete a folder, add a file) and a branch ``dev`` that forks from the
second commit with one commit of its own; pipeline ``Copy`` (glob ``/*/*``, one output file
per input) with a job per master commit, the last of which fails; a ``job.failed`` event in
the outbox with one delivery row.
"""

from __future__ import annotations

import os
import sys
import tarfile
import tempfile
from pathlib import Path


def build(root: Path) -> None:
    from pipelines.store import EmbeddedStore

    from pipelines.runner import Runner

    os.environ["TULIP_NO_AUTORUN"] = "1"
    s = EmbeddedStore(root)
    s.create_repo("photos")

    def commit(puts: dict[str, bytes], deletes=(), branch="master", message=""):
        with s.start_commit("photos", branch, description=message) as w:
            for p in deletes:
                w.delete(p)
            for p, data in puts.items():
                w.put_bytes(p, data)
        return w.id

    commit({f"/daisy/{i}.jpg": b"daisy %d" % i for i in range(3)}, message="daisies")
    s.create_pipeline(
        {
            "pipeline": {"name": "Copy"},
            "transform": {
                "cmd": ["bash"],
                "stdin": [
                    "if [ -e /pfs/photos/roses/bad.jpg ]; then echo 'bad rose' >&2; exit 3; fi",
                    "for f in /pfs/photos/*/*; do cp $f /pfs/out/$(basename $(dirname $f))_$(basename $f); done",
                ],
            },
            "input": {"pfs": {"repo": "photos", "glob": "/*/*"}},
            "datumTries": 1,
        }
    )
    Runner(s).run_until_idle()
    c2 = commit({f"/tulips/{i}.jpg": b"tulip %d" % i for i in range(2)}, message="tulips")
    Runner(s).run_until_idle()
    commit({"/daisy/1.jpg": b"daisy 1, retaken"}, message="retake daisy 1")
    Runner(s).run_until_idle()
    s.create_branch("photos", "dev", head=c2)
    commit({"/dev/only.jpg": b"on dev"}, branch="dev", message="dev work")
    commit({}, deletes=["/tulips"], message="no tulips")
    Runner(s).run_until_idle()
    commit({"/roses/bad.jpg": b"rose"}, message="a bad rose")
    Runner(s).run_until_idle()
    event = s.db.execute("SELECT id FROM outbox WHERE type = 'job.failed'").fetchone()[0]
    with s.transaction() as conn:
        conn.execute("INSERT INTO endpoints(name, url) VALUES ('hook', 'http://127.0.0.1:9/hook')")
        conn.execute(
            "INSERT INTO deliveries(event_id, endpoint, state, attempts, next_attempt) "
            "VALUES (?, 'hook', 'retrying', 2, 0)",
            (event,),
        )
    s.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    s.close()


def main(out: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "store"
        build(root)
        with tarfile.open(out, "w:gz") as tar:
            for p in sorted(root.rglob("*")):
                rel = p.relative_to(root)
                if rel.parts[0] in ("work", "logs", "tmp") or p.name.endswith(("-wal", "-shm")):
                    continue
                tar.add(p, arcname=str(rel), recursive=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
