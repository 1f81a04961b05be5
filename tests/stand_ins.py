"""Shell stand-ins for the Audit, Train and Convert stages: they write the files the real
stages write (``audit.json``, ``metrics.json``, ``conversion.json``, ``optimized_graph.lite``),
and a Convert that refuses as the gate does (``gate blocked: ...``, exit 3) when the audit
failed, in milliseconds and without TensorFlow. The data commit says what to write:
``/verdict.txt`` (pass, warn or fail) and ``/accuracy.txt``."""

from __future__ import annotations

AUDIT_SPEC = {
    "pipeline": {"name": "Audit"},
    "transform": {
        "cmd": ["/bin/bash"],
        "stdin": [
            "set -e",
            "v=$(cat /pfs/flower_photos/verdict.txt)",
            'printf \'{"schema": "tulip.audit/v1", "verdict": "%s", "data": {"repo": '
            '"flower_photos", "commit": "%s"}, "findings": [{"check": "lookalike_class", '
            '"severity": "%s", "classes": ["orchids", "tulips"]}]}\' "$v" '
            '"$flower_photos_COMMIT" "$v" > /pfs/out/audit.json',
        ],
    },
    "input": {"pfs": {"repo": "flower_photos", "glob": "/"}},
}
GATED_CONVERT_SPEC = {
    "pipeline": {"name": "Convert"},
    "transform": {
        "cmd": ["/bin/bash"],
        "stdin": [
            'if grep -q \'"verdict": "fail"\' /pfs/Audit/audit.json; then '
            'echo "gate blocked: audit $flower_photos_COMMIT failed: 1 findings '
            '(lookalike_class orchids/tulips)" >&2; exit 3; fi',
            "echo model > /pfs/out/optimized_graph.lite",
        ],
    },
    "input": {
        "cross": [
            {"pfs": {"repo": "Audit", "glob": "/"}},
            {"pfs": {"repo": "flower_photos", "glob": "/"}},
        ]
    },
}

TRAIN_SPEC = {
    "pipeline": {"name": "Train"},
    "transform": {
        "cmd": ["/bin/bash"],
        "stdin": [
            "a=$(cat /pfs/flower_photos/accuracy.txt)",
            'printf \'{"schema": "tulip.metrics/v1", "architecture": "mobilenet_0.25_224", '
            '"accuracy": %s}\' "$a" > /pfs/out/metrics.json',
        ],
    },
    "input": {"pfs": {"repo": "flower_photos", "glob": "/"}},
}
CONVERT_FROM_TRAIN_SPEC = {
    "pipeline": {"name": "Convert"},
    "transform": {
        "cmd": ["/bin/bash"],
        "stdin": [
            'if grep -q \'"verdict": "fail"\' /pfs/Audit/audit.json; then '
            'echo "gate blocked: audit $Audit_COMMIT failed" >&2; exit 3; fi',
            "a=$(grep -o '[0-9.]*}' /pfs/Train/metrics.json | tr -d '}')",
            'printf \'{"schema": "tulip.conversion/v1", "published": {"variant": "int8", '
            '"file": "optimized_graph.lite", "size_bytes": 9, "agreement": 1.0, '
            '"accuracy": %s}}\' "$a" > /pfs/out/conversion.json',
            "echo model-$a > /pfs/out/optimized_graph.lite",
        ],
    },
    "input": {
        "cross": [
            {"pfs": {"repo": "Audit", "glob": "/"}},
            {"pfs": {"repo": "Train", "glob": "/"}},
        ]
    },
}


def embed_spec(python: str) -> dict:
    """An Embed that writes a record per file (``pipelines.records``), with a vector from the
    file's bytes: what the real one writes, minus the backbone."""
    code = (
        "import hashlib, pathlib, numpy as np\n"
        "from pipelines.layout import label_of\n"
        "from pipelines.records import EmbeddingRecord, record_path\n"
        "src, out = pathlib.Path('/pfs/flower_photos'), pathlib.Path('/pfs/out')\n"
        "for p in sorted(x for x in src.rglob('*') if x.is_file()):\n"
        "    rel = '/' + p.relative_to(src).as_posix()\n"
        "    if not label_of(rel):\n"
        "        continue\n"
        "    data = p.read_bytes()\n"
        "    vec = np.frombuffer(hashlib.sha256(data).digest(), dtype=np.uint8)[:8] / 255.0\n"
        "    r = EmbeddingRecord(rel, label_of(rel), hashlib.sha256(data).hexdigest(), len(data),\n"
        "                        'stand_in', embedding=vec.astype(np.float32))\n"
        "    target = out / record_path(rel).lstrip('/')\n"
        "    target.parent.mkdir(parents=True, exist_ok=True)\n"
        "    target.write_text(r.to_json())\n"
    )
    return {
        "pipeline": {"name": "Embed"},
        "transform": {"cmd": [python, "-c", code]},
        "input": {"pfs": {"repo": "flower_photos", "glob": "/"}},
    }
