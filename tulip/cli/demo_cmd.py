"""`tulip demo`: the seed story end to end on the embedded engine."""

from __future__ import annotations

import signal
from pathlib import Path

import click

from . import output as out
from .base import Settings, cli, pass_settings


@cli.command("demo")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo"),
    show_default=True,
    help="the demo's folder: its store, and the android/ and ios/ apps",
)
@click.option(
    "--data",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="a flower_photos folder (default: $TULIP_DEMO_DATA, the cache, then a download)",
)
@click.option(
    "--architecture",
    default="mobilenet_0.25_224",
    show_default=True,
    help="the MobileNet backbone the pipelines use",
)
@click.option(
    "--max-per-class",
    type=int,
    default=None,
    help="use at most this many images per class (the full set has ~700)",
)
@click.option("--no-download", is_flag=True, help="never download; fall back to generated flowers")
@click.option(
    "--serve",
    "serve_after",
    is_flag=True,
    help="keep the report server (and Tensorboard) running at the end",
)
@click.option("--port", type=int, default=8080, show_default=True, help="port for --serve")
@out.output_option()
@pass_settings
def demo(
    s: Settings,
    workdir: Path,
    data: Path | None,
    architecture: str,
    max_per_class: int | None,
    no_download: bool,
    serve_after: bool,
    port: int,
    output: str,
) -> None:
    """Play the seed story: pass, then orchids that are tulips, blocked and blamed, then the review that fixes it."""
    from tulip.demo import Demo, DemoOptions

    bars: dict[str, object] = {}

    def progress(step: str, done: int, total: int) -> None:
        if s.quiet:
            return
        bar = bars.get(step)
        if bar is None:
            bar = bars[step] = out.progress_bar(
                total, step, quiet=s.quiet, unit="B" if step == "download" else "img"
            )
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    options = DemoOptions(
        workdir=workdir,
        data=data,
        architecture=architecture,
        max_per_class=max_per_class,
        download=not no_download,
        keep_services=serve_after,
    )
    # A kill (SIGTERM, SIGHUP) unwinds as Ctrl-C does, so the demo stops its runner and services.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    result = Demo(options, say=lambda m: out.info(m, quiet=s.quiet), progress=progress).run()
    if output == "json":
        out.emit_json(result.as_dict())
    else:
        _summary(result)
    if serve_after:
        from reports import create_app
        from reports.server import run

        app = create_app({"TULIP_ROOT": result.store})
        try:
            run(
                app,
                host="127.0.0.1",
                port=port,
                ready=lambda h, p: out.info(
                    f"serving the reports at http://{h}:{p}/ (Ctrl-C to stop)", quiet=False
                ),
            )
        except KeyboardInterrupt:
            out.info("stopped", quiet=s.quiet)


def _exit_on_signal(_signum: int, _frame) -> None:
    raise KeyboardInterrupt  # main() maps it to an exit code, as for Ctrl-C


def _summary(result) -> None:
    click.echo("")
    out.table(
        ["ROUND", "DATA COMMIT", "AUDIT", "FINDINGS", "GATE", "EXPORTED", "EMBED DATUMS", "TIME"],
        [
            (
                r.name,
                r.data_commit[:12],
                r.verdict
                if not r.reviewed_verdict
                else f"{r.verdict}, reviewed {r.reviewed_verdict}",
                ", ".join(
                    sorted(
                        {
                            f"{f['check']} {'/'.join(f['classes'])}"
                            for f in r.findings
                            if f["check"] != "label_issue"
                        }
                    )
                )
                or (
                    f"{sum(f['check'] == 'label_issue' for f in r.findings)} label_issue"
                    if r.findings
                    else "-"
                ),
                "open" if r.gate == "open" else "blocked",
                (r.exported or "-")[:12],
                f"{r.embed_processed} run, {r.embed_skipped} unchanged",
                f"{r.seconds:.0f}s",
            )
            for r in result.rounds
        ],
    )
    click.echo("")
    if result.blame:
        click.echo(f"Blame: {result.blame.get('summary')}")
    if result.fix_blame:
        click.echo(f"After the review: {result.fix_blame.get('summary')}")
    if result.alert:
        ev = result.alert["event"]
        click.echo(f"Alert: {ev.get('type')} about {ev.get('subject')}, signature valid")
    if result.identify:
        click.echo(f"Identify: {result.identify.get('summary', result.identify)}")
    click.echo(
        f"Apps: {result.workdir}/android/tflite/app/src/main/assets and {result.workdir}/ios/tflite/data"
    )
    click.echo(f"Report: {result.report}")
    click.echo(
        f"Explore: export TULIP_ROOT={result.store}; tulip list repo; tulip lineage Convert@master"
    )
    click.echo(
        f"Total: {result.seconds:.0f}s on {result.data['kind']} data with {result.architecture}"
    )
