"""The Audit pipeline's code: ``python3 -m auditor.stage``.

Reads Embed's records (``/pfs/Embed``), the data repo (``/pfs/flower_photos``, for files
outside class folders) and, optionally, a labelled reference gallery
(``/pfs/label_reference``); writes ``/pfs/out/audit.json``. The audit job succeeds whatever
the verdict: a failing verdict is a result, and Convert's gate acts on it.

With a store reachable (``$TULIP_ROOT`` locally, or a Pachyderm cluster), it also fills each
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

from auditor.policy import load_policy
from auditor.run import AUDIT_PIPELINE, AuditInputs, audit, record_verdict
from auditor.sources import (
    EmbeddingCache,
    class_files_in_dir,
    default_cache_dir,
    embed_images,
    embed_output_for,
    previous_audit,
    records_from_backend,
    stray_records,
    with_stray,
)
from pipelines.errors import TulipError
from pipelines.records import load_dir
from pipelines.worker import STORE_ROOT_ENV


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


def _open_backend():
    """The store this job's data lives in, if reachable from here."""
    if os.environ.get(STORE_ROOT_ENV):
        from pipelines.embedded.store import EmbeddedStore

        return EmbeddedStore(os.environ[STORE_ROOT_ENV], create=False)
    if os.environ.get("PACHD_PEER_SERVICE_HOST") or os.environ.get("PACHD_ADDRESS"):
        from pipelines.connect import open_backend

        return open_backend(backend="pachyderm")
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    data_repo = args.data_repo or args.data.name
    data_commit = os.environ.get(f"{args.data.name}_COMMIT")
    job = os.environ.get("PACH_JOB_ID")
    try:
        policy = load_policy(args.policy)
        data = load_dir(args.embeddings)
        _images, stray = class_files_in_dir(args.data) if args.data.is_dir() else ([], [])
        data = with_stray(data, stray_records(stray))
        inputs = AuditInputs(
            data,
            {"repo": data_repo, "branch": "master", "commit": data_commit},
            source=f"Embed@{os.environ.get('Embed_COMMIT', '?')}",  # noqa: SIM112 - Pachyderm's name
        )
        backend = _open_backend()
        cache = EmbeddingCache(
            default_cache_dir(
                Path(os.environ[STORE_ROOT_ENV]) if os.environ.get(STORE_ROOT_ENV) else None
            )
        )
        if args.reference is not None and args.reference.is_dir():
            ref_images, _ = class_files_in_dir(args.reference)
            if ref_images:
                inputs.reference = embed_images(
                    ref_images, architecture=data.architecture or "mobilenet_1.0_224", cache=cache
                )
                ref_name = args.reference_repo or args.reference.name
                inputs.reference_ref = {
                    "repo": ref_name,
                    "commit": os.environ.get(f"{args.reference.name}_COMMIT"),
                }
        introduced = None
        if backend is not None and data_commit:
            prev = previous_audit(
                backend, os.environ.get("PPS_PIPELINE_NAME", AUDIT_PIPELINE), data_repo, data_commit
            )
            if prev is not None:
                embed_commit = embed_output_for(backend, data_repo, prev["data"]["commit"])
                if embed_commit is not None:
                    previous = records_from_backend(backend, "Embed", embed_commit)
                    if previous.architecture == data.architecture:
                        inputs.previous = previous
                        inputs.previous_ref = {"repo": data_repo, "commit": prev["data"]["commit"]}
            introduced = lambda paths: backend.introduced_by(data_repo, data_commit, paths)  # noqa: E731
        result = audit(inputs, policy=policy, introduced_by=introduced)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "audit.json").write_text(json.dumps(result.document, indent=2, sort_keys=False))
        if backend is not None:
            record_verdict(backend, result.document, audit_commit=job)
            backend.close()
    except TulipError as e:
        print(f"audit failed: {e}", file=sys.stderr)
        return 2
    doc = result.document
    top = ", ".join(f"{f['check']} {'/'.join(f['classes'])}" for f in doc["findings"][:3])
    print(
        f"audit {doc['verdict']}: {len(doc['findings'])} findings on {doc['summary']['images']} images "
        f"in {time.perf_counter() - started:.1f}s" + (f" ({top})" if top else ""),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
