"""`tulip audit`: audit a data commit, a plain folder or an embeddings file, and exit by
verdict, for people and CI."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pipelines.refs import parse_ref

from . import output as out
from .base import Refused, Settings, cli, pass_settings


def _progress(s: Settings):
    bars: dict[str, object] = {}

    def update(step: str, done: int, total: int) -> None:
        if s.quiet:
            return
        bar = bars.get(step)
        if bar is None:
            unit = "step" if step == "audit" else "img"
            bar = bars[step] = out.progress_bar(total, step, quiet=s.quiet, unit=unit)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return update


def _step_progress(s: Settings):
    """One bar over the audit's steps (a million-image audit takes minutes)."""
    state: dict[str, object] = {}

    def update(step: str, done: int, total: int) -> None:
        if s.quiet:
            return
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = out.progress_bar(total, "audit", quiet=s.quiet, unit="step")
        bar.set_postfix_str(step, refresh=False)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return update


@cli.command("audit")
@click.argument("ref", required=False)
@click.option(
    "--dir",
    "folder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="audit a plain folder of class subfolders instead of a commit",
)
@click.option(
    "--reference", default=None, help="a labelled gallery: REPO@REF (or a folder, with --dir)"
)
@click.option(
    "--embeddings",
    "embeddings",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="audit embeddings made elsewhere: .npz (paths, labels, embeddings) or Parquet "
    "(path, label, embedding)",
)
@click.option(
    "--reference-embeddings",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="a labelled gallery as an embeddings file of the same shape (with --embeddings)",
)
@click.option(
    "--policy",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="severities and thresholds (TOML or JSON); see `tulip audit --print-policy`",
)
@click.option(
    "--architecture",
    default=None,
    help="backbone for embeddings it computes (default: Embed's, else mobilenet_1.0_224)",
)
@click.option(
    "--fail-on",
    type=click.Choice(["fail", "warn"]),
    default="fail",
    show_default=True,
    help="the verdict that makes the exit code 3",
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="also write a standalone HTML report here",
)
@click.option("--print-policy", is_flag=True, help="print the default policy and exit")
@out.output_option()
@pass_settings
def audit(
    s: Settings,
    ref: str | None,
    folder: Path | None,
    reference: str | None,
    embeddings: Path | None,
    reference_embeddings: Path | None,
    policy: Path | None,
    architecture: str | None,
    fail_on: str,
    report: Path | None,
    print_policy: bool,
    output: str,
) -> None:
    """Audit REPO@REF (or --dir PATH): exit 0 on pass or warn, 3 on fail, 2 on bad input."""
    if print_policy:
        from auditor.policy import default_policy_toml

        click.echo(default_policy_toml(), nl=False)
        return
    if len([x for x in (ref, folder, embeddings) if x is not None]) != 1:
        raise click.UsageError("give one of REPO@REF, --dir PATH or --embeddings FILE")
    if reference_embeddings is not None and embeddings is None:
        raise click.UsageError("--reference-embeddings goes with --embeddings")
    if reference is not None and embeddings is not None:
        raise click.UsageError("with --embeddings, give the gallery as --reference-embeddings")
    try:
        backend, result = _run(
            s, ref, folder, reference, embeddings, reference_embeddings, policy, architecture
        )
    except MemoryError:
        # outside a step (reading the embeddings, gathering them from the store): the same
        # advice as a step's AuditOutOfMemory, never a traceback
        from auditor.audit import out_of_memory

        raise out_of_memory("while reading its embeddings") from None
    doc = result.document
    failed = doc["verdict"] == "fail" or (fail_on == "warn" and doc["verdict"] == "warn")
    refusal = s.refuse_after_output(Refused() if failed else None)
    if report is not None:
        if embeddings is not None:
            from reports.standalone import write_report

            write_report(report, doc)  # no images: the file holds only embeddings
        else:
            _write_report(doc, report, backend, folder, reference)
    if output == "json":
        click.echo(json.dumps(doc, indent=2))
    else:
        _print_findings(doc)
    if refusal is not None:
        raise refusal


def _run(
    s: Settings,
    ref: str | None,
    folder: Path | None,
    reference: str | None,
    embeddings: Path | None,
    reference_embeddings: Path | None,
    policy: Path | None,
    architecture: str | None,
):
    """(backend or None, AuditResult) of the one input given."""
    if embeddings is not None:
        from auditor import audit_embeddings

        backend = None
        result = audit_embeddings(
            embeddings,
            reference=reference_embeddings,
            policy=policy,
            progress=_step_progress(s),
        )
        emb = result.document["embeddings"]
        if not emb["calibrated"] or not s.quiet:
            click.echo(f"tulip: thresholds: {emb['note']}", err=True)
    elif folder is not None:
        from auditor import audit_folder

        backend = None
        result = audit_folder(
            folder,
            reference=Path(reference) if reference else None,
            policy=policy,
            architecture=architecture,
            progress=_progress(s),
        )
    else:
        from auditor import audit_commit

        backend = s.backend()
        result = audit_commit(
            backend,
            parse_ref(ref),
            reference=parse_ref(reference) if reference else None,
            policy=policy,
            architecture=architecture,
            progress=_progress(s),
        )
    return backend, result


def _print_findings(doc: dict) -> None:
    data = doc["data"]
    where = f"{data['repo']}@{data['commit']}" if data.get("commit") else data["repo"]
    summary = doc["summary"]
    click.echo(
        f"{doc['verdict'].upper()}: {where}: {summary['images']} images in "
        f"{len(summary['classes'])} classes, {len(doc['findings'])} findings"
    )
    if not doc["findings"]:
        return
    rows = []
    for f in doc["findings"]:
        intro = ", ".join(f"{c['repo']}@{c['commit'][:12]}" for c in f.get("introduced_by") or [])
        rows.append(
            (
                f["severity"],
                f["check"],
                "/".join(f["classes"]),
                len(f["files"]),
                f["message"],
                intro or "-",
            )
        )
    out.table(["SEVERITY", "CHECK", "CLASSES", "FILES", "MESSAGE", "INTRODUCED BY"], rows, wrap=4)


def _write_report(
    doc: dict, path: Path, backend, folder: Path | None, reference: str | None
) -> None:
    from reports.standalone import images_from_backend, images_from_dirs, write_report

    if folder is not None:
        mounts = {doc["data"]["repo"]: folder}
        if reference:
            mounts[doc["reference"]["repo"]] = Path(reference)
        images = images_from_dirs(mounts)
    else:
        commits = {doc["data"]["repo"]: doc["data"]["commit"]}
        if doc.get("reference"):
            commits[doc["reference"]["repo"]] = doc["reference"]["commit"]
        images = images_from_backend(backend, commits)
    write_report(path, doc, images=images)
