"""Transforms for the double's emulated jobs.

``run_spec_command`` runs a spec's own ``transform.cmd``/``stdin`` on the job's inputs, laid
out as a worker would see them (``/pfs/<input>/...`` and ``/pfs/out``, with "/pfs/" rewritten
to a temporary directory, as the embedded engine does). It runs once per job over the whole
input, so it matches a real worker only for stages whose output does not depend on how the
input is split into datums (glob "/" stages, or map-like ones). A non-zero exit fails the job;
its last stderr line is logged, as a worker's stderr would be.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .state import DoubleJob


def _rewrite(text: str, pfs: Path) -> str:
    return text.replace("/pfs/", str(pfs) + "/")


def run_spec_command(job: DoubleJob) -> dict[str, bytes]:
    transform = job.spec.get("transform") or {}
    with tempfile.TemporaryDirectory(prefix=f"double-{job.pipeline}-") as tmp:
        pfs = Path(tmp) / "pfs"
        for name, files in job.inputs.items():
            (pfs / name).mkdir(parents=True, exist_ok=True)
            for path, data in files.items():
                target = pfs / name / path.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        out = pfs / "out"
        out.mkdir(parents=True)
        cmd = [_rewrite(c, pfs) for c in transform["cmd"]]
        if cmd[0] in ("python", "python3"):
            cmd[0] = sys.executable
        stdin = transform.get("stdin")
        env = {
            **os.environ,
            **{k: _rewrite(str(v), pfs) for k, v in (transform.get("env") or {}).items()},
            **{f"{name}_COMMIT": cid for name, cid in job.input_commits.items()},
            "PACH_JOB_ID": job.id,
            "PPS_PIPELINE_NAME": job.pipeline,
        }
        proc = subprocess.run(
            cmd,
            input="\n".join(_rewrite(line, pfs) for line in stdin) + "\n" if stdin else None,
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp,
            timeout=300,
        )
        for line in (proc.stdout + proc.stderr).splitlines():
            job.log(line)
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            raise RuntimeError(lines[-1] if lines else f"exit status {proc.returncode}")
        return {
            "/" + p.relative_to(out).as_posix(): p.read_bytes()
            for p in sorted(out.rglob("*"))
            if p.is_file()
        }
