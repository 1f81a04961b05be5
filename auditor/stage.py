"""The Audit pipeline's code: ``python3 -m auditor.stage``.

Reads Embed's records (``/pfs/Embed``), the data repo (``/pfs/flower_photos``, for files
outside class folders) and, optionally, a labelled reference gallery
(``/pfs/label_reference``); writes ``/pfs/out/audit.json``. The audit job succeeds whatever
the verdict: a failing verdict is a result, and Convert's gate acts on it.

With a store reachable (``pipelines.connect.stage_backend``: ``$TULIP_ROOT`` in the local
engine, pachd through the worker's in-cluster environment on Pachyderm), it also fills each
finding's ``introduced_by`` from the path history, finds the previous audit for drift, and
writes the verdict onto the data commit's metadata.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from auditor.run import audit_folder
from pipelines.connect import stage_backend
from pipelines.layout import AUDIT, AUDIT_FILE, EMBED, mounted
from pipelines.records import load_dir
from training.runtime import stage_main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m auditor.stage",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--embeddings", type=Path, default=Path("/pfs/Embed"))
    ap.add_argument("--data", type=Path, default=Path("/pfs/flower_photos"))
    ap.add_argument(
        "--reference", type=Path, default=None, help="a labelled gallery of other images"
    )
    ap.add_argument("--out", type=Path, default=Path("/pfs/out"))
    ap.add_argument("--policy", type=Path, default=None)
    ap.add_argument("--data-repo", default=None, help="default: the name of the --data folder")
    ap.add_argument(
        "--reference-repo", default=None, help="default: the name of the --reference folder"
    )
    return ap.parse_args(argv)


def _mount_commit(folder: Path) -> str | None:
    """The commit a mounted input holds: Pachyderm (and the local engine) set ``<input>_COMMIT``."""
    return os.environ.get(f"{folder.name}_COMMIT")


def run(args: argparse.Namespace) -> str:
    started = time.perf_counter()
    reference = args.reference if args.reference is not None and args.reference.is_dir() else None
    backend = stage_backend()
    try:
        result = audit_folder(
            args.data,
            reference=reference,
            policy=args.policy,
            embeddings=load_dir(args.embeddings),
            source=f"{EMBED}@{os.environ.get(f'{EMBED}_COMMIT', '?')}",
            data_ref={
                "repo": args.data_repo or args.data.name,
                "branch": "master",
                "commit": _mount_commit(args.data),
            },
            reference_ref=None
            if reference is None
            else {
                "repo": args.reference_repo or reference.name,
                "commit": _mount_commit(reference),
            },
            history=backend,
            audit_repo=os.environ.get("PPS_PIPELINE_NAME", AUDIT),
            audit_commit=os.environ.get("PACH_JOB_ID"),
        )
    finally:
        if backend is not None:
            backend.close()
    doc = result.document
    args.out.mkdir(parents=True, exist_ok=True)
    mounted(args.out, AUDIT_FILE).write_text(json.dumps(doc, indent=2, sort_keys=False))
    top = ", ".join(f"{f['check']} {'/'.join(f['classes'])}" for f in doc["findings"][:3])
    return (
        f"audit {doc['verdict']}: {len(doc['findings'])} findings on {doc['summary']['images']} "
        f"images in {time.perf_counter() - started:.1f}s" + (f" ({top})" if top else "")
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return stage_main("audit", lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
