"""What pipeline code sees at run time: its datums, where to read them, and where to write.

The same user code runs in Tulip's local engine and inside a Pachyderm worker:

* A plain transform (no ``datumBatching``) is started once per datum. It reads
  ``/pfs/<input>`` and writes ``/pfs/out``. Locally the engine rewrites ``/pfs/`` in the
  transform's ``cmd``, ``stdin`` and ``env`` to a per-datum directory, and sets ``PFS_ROOT``;
  ``pfs_root()`` returns it, or ``/pfs`` on a real cluster.

* A transform with ``"datumBatching": true`` is started once per job and asks for its datums.
  ``run_batched(process, batch_size=32)`` hands ``process`` lists of ``Datum``: locally from
  the manifest named by ``$TULIP_DATUMS``; on Pachyderm one at a time through
  ``pachyderm_sdk``'s worker API, where ``/pfs`` is remapped for each datum. Batching lets
  an embedder decode the next images while the backbone runs on the current ones.

A datum that ``process`` marks with ``datum.fail(reason)``, or a batch in which ``process``
raises, is recorded as failed; the others succeed. Everything written under ``datum.out``
becomes that datum's output and is carried over unchanged while its inputs do not change.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DATUM_MANIFEST_ENV = "TULIP_DATUMS"
PFS_ROOT_ENV = "PFS_ROOT"
STORE_ROOT_ENV = "TULIP_ROOT"
DONE_MARKER = "_tulip_done"
FAILED_MARKER = "_tulip_failed"


def pfs_root() -> Path:
    """Where ``/pfs`` really is for this process."""
    return Path(os.environ.get(PFS_ROOT_ENV, "/pfs"))


def input_dir(name: str) -> Path:
    return pfs_root() / name


def output_dir() -> Path:
    return pfs_root() / "out"


@dataclass
class Datum:
    """One unit of work: a directory per input, and an output directory of its own."""

    id: str
    inputs: dict[str, Path]
    out: Path
    control: Path | None = None  # where the local engine reads this datum's outcome and log
    failure: str | None = field(default=None, init=False)

    def files(self, input_name: str | None = None) -> list[Path]:
        """Every regular file of one input (or the only input), sorted, recursively."""
        if input_name is None:
            if len(self.inputs) != 1:
                raise ValueError(f"datum {self.id} has inputs {sorted(self.inputs)}; name one")
            input_name = next(iter(self.inputs))
        root = self.inputs[input_name]
        if root.is_file():
            return [root]
        return sorted(p for p in root.rglob("*") if p.is_file())

    def relpath(self, path: Path, input_name: str | None = None) -> str:
        """The repo path (``/daisy/1.jpg``) of a file under one of this datum's inputs.

        Inputs are mounted as in Pachyderm: ``/pfs/<input>/<repo path>``.
        """
        name = input_name or next(iter(self.inputs))
        return "/" + path.relative_to(self.inputs[name]).as_posix()

    def fail(self, reason: str) -> None:
        self.failure = reason

    def log(self, message: str) -> None:
        """Append a line to this datum's log (kept by the engine, shown by ``tulip logs``)."""
        if self.control is not None:
            with open(self.control / "log.txt", "a", encoding="utf-8") as f:
                f.write(message.rstrip("\n") + "\n")
        else:
            print(message, file=sys.stderr)


def _local_datums(manifest: Path) -> Iterator[Datum]:
    with open(manifest, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            d = json.loads(line)
            yield Datum(
                id=d["id"],
                inputs={k: Path(v) for k, v in d["inputs"].items()},
                out=Path(d["out"]),
                control=Path(d["control"]),
            )


def _finish_local(batch: Sequence[Datum], error: str | None) -> None:
    for datum in batch:
        assert datum.control is not None
        reason = error or datum.failure
        if reason:
            (datum.control / FAILED_MARKER).write_text(reason, encoding="utf-8")
        else:
            (datum.control / DONE_MARKER).write_text("", encoding="utf-8")


def run_batched(process: Callable[[list[Datum]], None], *, batch_size: int = 32) -> None:
    """Feed every datum of this job to ``process`` in lists of at most ``batch_size``."""
    manifest = os.environ.get(DATUM_MANIFEST_ENV)
    if manifest:
        batch: list[Datum] = []
        for datum in _local_datums(Path(manifest)):
            batch.append(datum)
            if len(batch) >= batch_size:
                _run_one_batch(process, batch)
                batch = []
        if batch:
            _run_one_batch(process, batch)
        return
    if os.environ.get("PACH_DATUM_BATCHING") or os.environ.get("PPS_WORKER_GRPC_PORT"):
        _run_on_pachyderm(process)
        return
    # Plain process outside any engine (a developer running the stage by hand):
    # treat /pfs as a single datum.
    inputs = {p.name: p for p in sorted(pfs_root().iterdir()) if p.name != "out" and p.is_dir()}
    process([Datum(id="local", inputs=inputs, out=output_dir())])


def _run_one_batch(process: Callable[[list[Datum]], None], batch: list[Datum]) -> None:
    try:
        process(batch)
    except Exception:  # recorded per datum; the job decides what a failure means
        error = traceback.format_exc()
        for datum in batch:
            datum.log(error)
        _finish_local(batch, error.strip().splitlines()[-1])
        return
    _finish_local(batch, None)


def _run_on_pachyderm(
    process: Callable[[list[Datum]], None],
) -> None:  # pragma: no cover - needs pachd
    from pachyderm_sdk import Client

    worker = Client().worker
    while True:
        with worker.batch_datum():
            root = pfs_root()
            inputs = {p.name: p for p in sorted(root.iterdir()) if p.name != "out"}
            datum = Datum(
                id=os.environ.get("PACH_DATUM_ID", "datum"), inputs=inputs, out=root / "out"
            )
            process([datum])
            if datum.failure:
                raise RuntimeError(datum.failure)
