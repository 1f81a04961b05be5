"""`tulip export mobile`, `tulip identify`, `tulip mobile check` and `tulip predict`.

Each command checks its flags, calls one function of ``mobile`` (``release.export_release``,
``identify.identify_file``, ``release_check.check_release``, ``predict.predict``), and formats
the result. The outcomes (``main.EXIT_CODES`` turns them into exit codes; 2 bad input, 1 bug):

* ``export mobile``: 3 when the gate refuses (a failed or missing audit, or a Convert
  commit whose job failed or was blocked), unless ``--force --reason TEXT``.
* ``identify``: 0 for a file that could be read (intact, unknown, or without a Tulip
  manifest), 3 for a Tulip export that was MODIFIED after export, 2 for a file that is not a
  TensorFlow Lite model or is truncated.
* ``mobile check``: 0 even when a platform is flagged (the report says FLAGGED);
  ``--strict`` makes a flagged platform exit 3, for CI.

Heavy modules (LiteRT, numpy, networkx) are imported inside the commands.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from . import output as out
from .base import Refused, Settings, cli, pass_settings

APPDIR_HELP = (
    "root of the tensorflow-for-poets-2 checkout (the folder holding {platform}/); files go "
    "to {where}"
)


@cli.group("export")
def export_group() -> None:
    """Export a model out of the store (into the mobile apps)."""


@export_group.command("mobile")
@click.argument("ref", metavar="REPO@REF")
@click.option(
    "--android",
    type=click.Path(path_type=Path),
    help=APPDIR_HELP.format(platform="android", where="android/tflite/app/src/main/assets/"),
)
@click.option(
    "--ios",
    type=click.Path(path_type=Path),
    help=APPDIR_HELP.format(platform="ios", where="ios/tflite/data/"),
)
@click.option("--force", is_flag=True, help="export past the gate (needs --reason)")
@click.option("--reason", help="why the gate may be overridden; recorded in the lineage")
@click.option(
    "--check",
    "run_check",
    is_flag=True,
    help="first run the device check on the test split and add it to the model card",
)
@click.option(
    "--ios-runtime",
    metavar="VERSION",
    help="TensorFlow Lite the iOS app ships (default 1.13.1: tensorflow-for-poets-2's Podfile)",
)
@click.option(
    "--android-runtime",
    metavar="VERSION",
    help="TensorFlow Lite the Android app ships (default latest: its build.gradle takes '+')",
)
@out.output_option()
@pass_settings
def export_mobile(
    s: Settings,
    ref: str,
    android: Path | None,
    ios: Path | None,
    force: bool,
    reason: str | None,
    run_check: bool,
    ios_runtime: str | None,
    android_runtime: str | None,
    output: str,
) -> None:
    """Put the model REPO@REF (a Convert commit, e.g. Convert@master) into the apps.

    Writes graph.lite (with its provenance embedded), labels.txt in the model's output
    order, and model_card.md/.json, atomically, then records the export in the lineage.
    Refuses (exit 3) a model whose audit failed or is missing, or a Convert commit whose job
    was blocked, unless --force --reason TEXT. The model must load in each app's TensorFlow
    Lite runtime (its min_runtime_version): else a float32 variant Convert kept is exported
    instead, or the export is refused (exit 2).
    """
    from mobile.release import export_release

    if force and not (reason or "").strip():
        raise click.UsageError("--force needs --reason TEXT: say why the gate may be overridden")
    if reason and not force:
        raise click.UsageError("--reason goes with --force; without --force nothing is overridden")
    if android is None and ios is None:
        raise click.UsageError("give --android APPDIR, --ios APPDIR, or both")
    release = export_release(
        s.backend(),
        ref,
        android=android,
        ios=ios,
        force=force,
        reason=reason,
        device_check=run_check,
        ios_runtime=ios_runtime,
        android_runtime=android_runtime,
    )
    if release.forced:
        for objection in release.overridden:
            out.info(f"FORCED past the gate: {objection}", quiet=False)
        out.info(f"reason recorded: {release.reason}", quiet=False)
    if output == "json":
        return out.emit_json(release.as_dict())
    _print_release(release)


def _print_release(release) -> None:
    src = release.source
    m = release.manifest
    labels = ", ".join(m.labels)
    click.echo(
        f"exported {src.commit.repo}@{src.commit.id} ({src.architecture or 'model'}, "
        f"{len(m.labels)} labels: {labels})" + (" FORCED" if release.forced else "")
    )
    if src.blocked:
        click.echo(f"  requested: {src.requested.repo}@{src.requested.id} (its job was blocked)")
    audit = (
        "none"
        if m.audit is None
        else f"{m.audit.verdict.upper()} ({m.audit.repo}@{m.audit.commit})"
    )
    click.echo(f"  audit:     {audit}")
    click.echo("  data:      " + (", ".join(f"{r.repo}@{r.commit}" for r in m.data) or "-"))
    rt = release.record.get("runtime") or {}
    targets = ", ".join(f"{p} {v}" for p, v in (rt.get("targets") or {}).items())
    click.echo(
        f"  runtime:   needs TensorFlow Lite {rt.get('min_runtime_version') or '(not recorded)'}"
        f" or newer; apps: {targets}"
        + (
            f"; exported the {rt['variant']} variant (the published model needs "
            f"{rt.get('published_min_runtime_version')})"
            if rt.get("variant") not in (None, "published")
            else ""
        )
    )
    check = release.record.get("device_check")
    if check:
        click.echo(
            f"  device:    {check['images']} {check['split']} images; "
            + ", ".join(
                f"{p['platform']} {_pct(p['accuracy'])} accurate, {_pct(p['agreement'])} agree"
                + (" FLAGGED" if p["flagged"] else "")
                for p in check["platforms"]
            )
        )
        if check.get("flagged"):
            click.echo(_flagged_meaning(check["flagged"], check.get("max_changed"), ref=src))
    for platform, folder in release.result.asset_dirs.items():
        files = [f for f in release.result.files if f.platform == platform]
        listing = ", ".join(
            f"{f.path.name} ({f.size:,} bytes)" if f.path.name == "graph.lite" else f.path.name
            for f in files
        )
        click.echo(f"  {platform + ':':<10} {folder}: {listing}")
    click.echo(
        f"  recorded:  export {release.export_id} in tulip_exports "
        f"(see `tulip lineage {src.commit.repo}@{src.commit.id} --downstream`)"
    )


def _identify_backend(s: Settings, no_store: bool):
    """The store to cross-check against: an explicit one must open; the default only if there."""
    from pipelines.backend import BACKEND_ENV, ROOT_ENV

    if no_store:
        return None
    explicit = (
        s.root is not None
        or os.environ.get(ROOT_ENV)
        or (s.backend_name or os.environ.get(BACKEND_ENV) or "embedded") != "embedded"
    )
    if explicit or (s.store_root / "tulip.db").exists():
        return s.backend()
    return None


@cli.command("identify")
@click.argument("model", type=click.Path(path_type=Path), metavar="FILE.lite")
@click.option("--no-store", is_flag=True, help="only read the file; ask no store")
@out.output_option()
@pass_settings
def identify(s: Settings, model: Path, no_store: bool, output: str) -> None:
    """Where a model file came from: its embedded manifest, checked against the store.

    Works on a file pulled off a phone, with or without a store (--root/$TULIP_ROOT).
    Says whether the file is intact and known, intact but unknown to the store, MODIFIED
    since export (exit 3), or carries no Tulip manifest at all.
    """
    from mobile.identify import identify_file

    result = identify_file(model, backend=_identify_backend(s, no_store), source=str(model))
    refusal = s.refuse_after_output(Refused() if result.status == "modified" else None)
    if output == "json":
        out.emit_json(result.as_dict())
    else:
        _print_identity(result)
    if refusal is not None:
        raise refusal


def _print_identity(result) -> None:
    ident = result.identity
    m = ident.manifest
    click.echo(f"{ident.source}: {result.headline()}")
    if ident.problems and m is not None:
        for problem in ident.problems:
            click.echo(f"  ! {problem}")
    rows: list[tuple[str, str]] = []
    if m is not None:
        rows.append(("model", f"{m.model.repo}@{m.model.commit}"))
        if m.architecture:
            rows.append(("variant", m.architecture))
        rows.append(("data", ", ".join(f"{r.repo}@{r.commit}" for r in m.data) or "-"))
        audit = "none" if m.audit is None else f"{m.audit.verdict.upper()}"
        if m.audit and m.audit.commit:
            audit += f" ({m.audit.repo}@{m.audit.commit})"
        rows.append(("audit", audit))
        if m.override_reason:
            rows.append(("FORCED", f"exported past the gate: {m.override_reason}"))
        rows.append(("labels", ", ".join(m.labels)))
        rows.append(("created", m.created))
    if ident.min_runtime_version:
        rows.append(("runtime", f"needs TensorFlow Lite {ident.min_runtime_version} or newer"))
    rows.append(("sha256", f"file {ident.file_sha256}"))
    rows.append(("", f"weights {ident.weights_sha256}"))
    if m is not None:
        rows.append(("", f"source {ident.source_sha256} (Convert's optimized_graph.lite)"))
    if result.store is None:
        rows.append(("store", "none checked (pass --root DIR or set $TULIP_ROOT)"))
    else:
        rows.append(("store", result.store))
        if result.published:
            p = result.published
            rows.append(("published", f"{p['repo']}@{p['commit']}:{p['path']} ({p['finished']})"))
        for doc in result.exports:
            rows.append(("exported", _export_line(doc)))
        if not result.exports:
            rows.append(("exported", "no recorded export wrote this exact file"))
        for doc in result.model_exports:
            rows.append(("other", "export of the same model: " + _export_line(doc)))
    for note in result.notes:
        rows.append(("note", note))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"  {key:<{width}}  {value}")


def _export_line(doc: dict) -> str:
    targets = ", ".join(f"{k} {v}" for k, v in (doc.get("asset_dirs") or {}).items()) or ", ".join(
        doc.get("targets") or []
    )
    forced = f" FORCED ({doc.get('reason')})" if doc.get("forced") else ""
    return f"{doc.get('id')} at {doc.get('time')} to {targets}{forced}"


@cli.group("mobile")
def mobile_group() -> None:
    """Check a model as the Android and iOS apps would run it."""


@mobile_group.command("check")
@click.argument("ref", metavar="REPO@REF")
@click.option(
    "--split",
    type=click.Choice(["test", "validation", "held-out", "all"]),
    default="test",
    show_default=True,
    help="which of Train's splits to run on (held-out: test + validation)",
)
@click.option(
    "--max-changed",
    type=click.FloatRange(0.0, 1.0),
    default=0.01,
    show_default=True,
    help="flag a platform whose preprocessing changes more than this share of predictions",
)
@click.option("--strict", is_flag=True, help="exit 3 when a platform is flagged")
@out.output_option()
@pass_settings
def mobile_check(
    s: Settings,
    ref: str,
    split: str,
    max_changed: float,
    strict: bool,
    output: str,
) -> None:
    """Run the model REPO@REF as each app would, on the images Train held out.

    Per platform: accuracy, agreement with the pipeline's own preprocessing, the share of
    predictions the app's preprocessing changes (FLAGGED above --max-changed), and the
    single-thread latency per image. Exits 0 even when flagged, unless --strict.
    """
    from mobile.release_check import check_release

    result = check_release(s.backend(), ref, split=split, max_changed=max_changed)
    refusal = s.refuse_after_output(
        Refused(f"{', '.join(result.flagged)} flagged, and --strict")
        if strict and result.flagged
        else None
    )
    if output == "json":
        out.emit_json(result.as_dict())
    else:
        _print_check(result)
    if refusal is not None:
        raise refusal


def _print_check(result) -> None:
    report = result.report
    src = result.source
    img = result.images_commit
    click.echo(
        f"{src.commit.repo}@{src.commit.id} ({src.architecture or 'model'}) on the {result.split} "
        f"split: {report.images} images of {img.repo}@{img.commit}"
    )
    rt = result.runtime()
    click.echo(
        f"  ran on: {rt['name']} {rt['version'] or '(version unknown)'}; the model needs "
        f"TensorFlow Lite {rt['model_min_runtime_version'] or '(not recorded)'} or newer "
        f"(apps: " + ", ".join(f"{p} {v}" for p, v in rt["app_runtimes"].items()) + ")"
    )
    if src.blocked:
        click.echo(
            f"  note: {src.requested.repo}@{src.requested.id} was blocked; this is the model it "
            "carries over"
        )
    click.echo(
        f"  pipeline preprocessing: accuracy {_pct(report.reference_accuracy)} (the reference)"
    )
    rows = []
    for p in report.platforms:
        rows.append(
            (
                p.platform,
                _pct(p.accuracy),
                _pct(p.agreement),
                f"{len(p.changed)} ({_pct(p.changed_fraction)})",
                f"{p.latency_ms_median:.2f} / {p.latency_ms_p90:.2f} ms",
                "FLAGGED" if p.flagged else "ok",
            )
        )
    out.table(
        ["PLATFORM", "ACCURACY", "AGREEMENT", "CHANGED", "LATENCY MEDIAN / P90", "STATUS"], rows
    )
    for p in report.platforms:
        for c in p.changed[:5]:
            click.echo(
                f"  {p.platform}: {result.local_to_repo.get(c.path, c.path)}: pipeline says "
                f"{c.reference}, the app would say {c.platform} (truth {c.truth})"
            )
    if report.flagged:
        click.echo(_flagged_meaning(report.flagged, report.max_changed, ref=None))


def _flagged_meaning(flagged: list[str], max_changed: float | None, *, ref) -> str:
    """What FLAGGED means, and what to do about it."""
    where = (
        f"; `tulip mobile check {ref.commit.repo}@{ref.commit.id}` lists the images"
        if ref is not None
        else ""
    )
    return (
        f"FLAGGED: {', '.join(flagged)}: on these images the app's own preprocessing changes "
        f"more than {_pct(max_changed)} of the predictions the pipeline makes with the same "
        "model, so the phone would answer differently from what was tested. Check that "
        "app's input normalisation and channel order against the model card"
        f"{where}"
    )


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


@cli.command("predict")
@click.argument("model", type=click.Path(path_type=Path), metavar="FILE.lite")
@click.argument(
    "images", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="IMAGE..."
)
@click.option(
    "--platform",
    type=click.Choice(["android", "ios"]),
    default="android",
    show_default=True,
    help="whose preprocessing and display rules to follow",
)
@click.option(
    "-k",
    "--top-k",
    type=click.IntRange(min=1),
    default=None,
    help="labels per image (default: as the app shows them, android 3, ios 5)",
)
@click.option(
    "--min-probability",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="hide labels below this (default: android 0, ios 0.1, as the apps do)",
)
@click.option(
    "--labels",
    "labels_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="a labels.txt, for a model without a Tulip manifest",
)
@out.output_option()
@pass_settings
def predict_cmd(
    s: Settings,
    model: Path,
    images: tuple[Path, ...],
    platform: str,
    top_k: int | None,
    min_probability: float | None,
    labels_path: Path | None,
    output: str,
) -> None:
    """The top labels the app would show for each IMAGE, from the model FILE.lite."""
    from mobile.predict import (
        ANDROID_TOP_K,
        IOS_MIN_PROBABILITY,
        IOS_TOP_K,
        predict,
    )

    if top_k is None:
        top_k = IOS_TOP_K if platform == "ios" else ANDROID_TOP_K
    if min_probability is None:
        min_probability = IOS_MIN_PROBABILITY if platform == "ios" else 0.0
    results = predict(
        model,
        list(images),
        platform=platform,
        top_k=top_k,
        min_probability=min_probability,
        labels=labels_path,
    )
    if output == "json":
        return out.emit_json(
            {
                "model": str(model),
                "platform": platform,
                "top_k": top_k,
                "min_probability": min_probability,
                "predictions": [
                    {
                        "image": str(image),
                        "top": [{"label": p.label, "probability": p.probability} for p in top],
                    }
                    for image, top in zip(images, results, strict=True)
                ],
            }
        )
    rows = []
    for image, top in zip(images, results, strict=True):
        if not top:
            rows.append((str(image), "-", "(nothing above the threshold)", ""))
        for rank, p in enumerate(top, start=1):
            rows.append(
                (str(image) if rank == 1 else "", rank, p.label, f"{100 * p.probability:.1f}%")
            )
    out.table(["IMAGE", "RANK", "LABEL", "PROBABILITY"], rows)
