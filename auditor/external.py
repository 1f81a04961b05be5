"""The use case for embeddings made elsewhere: ``audit_embeddings(path, reference=...)``.

``tulip audit --embeddings FILE [--reference-embeddings FILE]`` calls it. The document is the
same ``tulip.audit/v1`` as for a commit; its ``embeddings`` section says where the vectors
came from and which thresholds were applied, because the near-copy threshold is a cosine
calibrated in MobileNet's space (``auditor.neighbours``) and means nothing certain in
another. The class-level thresholds are AUCs of a classifier, which carry over to any space.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from auditor.audit import AuditResult, Progress, run_audit
from auditor.embedding_files import InvalidEmbeddings, read_embeddings
from auditor.neighbours import NEAR_DUPLICATE_BY_ARCHITECTURE
from auditor.policy import Policy, load_policy

#: spaces whose near-copy threshold was measured (bench/near_copy_calibration.py)
CALIBRATED = frozenset({"mobilenet_1.0_224", *NEAR_DUPLICATE_BY_ARCHITECTURE})


def calibration(architecture: str | None, policy: Policy) -> dict:
    """What the thresholds of this audit mean in the embeddings' space."""
    effective = policy.for_architecture(architecture)
    near = effective.settings["duplicate"]["near_threshold"]
    own = ("duplicate", "near_threshold") in policy.overridden
    calibrated = architecture in CALIBRATED
    if own:
        note = f"near-copy threshold {near:g} from the policy file"
    elif calibrated:
        note = f"near-copy threshold {near:g}, calibrated for {architecture}"
    else:
        note = (
            f"the embeddings' space ({architecture or 'unnamed'}) is not one Tulip has "
            f"calibrated: the near-copy threshold {near:g} was measured on MobileNet embeddings "
            "and may link distinct images or miss copies here; set [duplicate], "
            "[cross_class_duplicate] and [split_leakage] near_threshold in a policy file. "
            "The class-level thresholds (overlap 2*(1-AUC)) and label_issue do not depend on "
            "the space"
        )
    return {
        "architecture": architecture,
        "calibrated": calibrated or own,
        "near_threshold": near,
        "overlap_threshold": effective.settings["class_overlap"]["threshold"],
        "note": note,
    }


def audit_embeddings(
    path: Path | str,
    *,
    reference: Path | str | None = None,
    policy: Policy | Path | None = None,
    progress: Progress | None = None,
) -> AuditResult:
    """Audit the embeddings in ``path`` (.npz or Parquet), against an optional labelled
    ``reference`` file of the same shape. Raises InvalidEmbeddings naming what is wrong."""
    pol = policy if isinstance(policy, Policy) else load_policy(policy)
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="tulip-embeddings-") as tmp:
        (Path(tmp) / "data").mkdir()
        data = read_embeddings(path, Path(tmp) / "data").data
        ref = None
        if reference is not None:
            (Path(tmp) / "reference").mkdir()
            ref = read_embeddings(
                Path(reference), Path(tmp) / "reference", name="reference embeddings"
            ).data
            if ref.vectors.shape[1] != data.vectors.shape[1]:
                raise InvalidEmbeddings(
                    f"{reference} has {ref.vectors.shape[1]}-d embeddings but {path} has "
                    f"{data.vectors.shape[1]}-d: embed both with the same backbone"
                )
            if ref.architecture and data.architecture and ref.architecture != data.architecture:
                raise InvalidEmbeddings(
                    f"{reference} names architecture {ref.architecture!r} but {path} names "
                    f"{data.architecture!r}: embed both with the same backbone"
                )
        result = run_audit(
            data,
            reference=ref,
            policy=pol,
            data_ref={"repo": str(path), "branch": None, "commit": None},
            reference_ref=None if reference is None else {"repo": str(reference), "commit": None},
            progress=progress,
        )
    result.document["embeddings"] = {
        "source": f"file {path}",
        "dimensions": int(data.vectors.shape[1]),
        **calibration(data.architecture, pol),
    }
    return result
