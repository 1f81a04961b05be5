"""`tulip lineage` and `tulip blame`: the lineage graph around a commit, and who to blame."""

from __future__ import annotations

from pathlib import Path

import click

from . import output as out
from .base import Settings, cli, pass_settings


@cli.command("lineage")
@click.argument("ref", required=False, metavar="[REPO@REF[:/PATH]]")
@click.option("--upstream", "direction", flag_value="upstream", help="only what it was built from")
@click.option(
    "--downstream", "direction", flag_value="downstream", help="only what was built from it"
)
@click.option(
    "--files/--no-files",
    default=True,
    show_default=True,
    help="show file versions (the nodes for every image of a data commit)",
)
@click.option(
    "--diff",
    "diff_ref",
    metavar="REPO@REF",
    help="instead, show which files and classes came and went from the data behind REF to the data behind this other model",
)
@click.option(
    "--openlineage",
    "openlineage_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="instead, write the jobs as OpenLineage run events (JSON lines) to this file",
)
@click.option(
    "--namespace",
    help="OpenLineage namespace (default: pachyderm://<pachd address> on a cluster, "
    "tulip://<host>/<store path> here, made URL-safe)",
)
@out.output_option("dot")
@pass_settings
def lineage(
    s: Settings,
    ref: str | None,
    direction: str | None,
    files: bool,
    diff_ref: str | None,
    openlineage_path: Path | None,
    namespace: str | None,
    output: str,
) -> None:
    """The lineage graph around REF: what it was built from and what was built from it.

    REF is a commit (REPO@BRANCH, REPO@COMMIT, REPO@BRANCH^) or one file (REPO@REF:/PATH).
    Without REF, the whole store. -o json is node-link JSON; -o dot is Graphviz.
    """
    if diff_ref:
        if ref is None:
            raise click.UsageError("--diff needs REF: tulip lineage MODEL_A --diff MODEL_B")
        from auditor import lineage_diff
        from auditor.lineage.render import diff_text

        diff = lineage_diff(s.backend(), ref, diff_ref)
        if output == "json":
            return out.emit_json(diff.as_dict())
        click.echo(diff_text(diff), nl=False)
        return

    from auditor import lineage_around

    backend = s.backend()
    view = lineage_around(backend, ref, direction=direction or "both", files=files)
    if openlineage_path is not None:
        from auditor.openlineage import namespace_for, run_events, safe_namespace, write_events

        if namespace is not None and safe_namespace(namespace) != namespace:
            raise click.BadParameter(
                f"{namespace!r} has characters OpenLineage servers (Marquez) refuse in a "
                f"namespace; use letters, digits and _.:/=@;+- (e.g. {safe_namespace(namespace)!r})",
                param_hint="--namespace",
            )

        events = run_events(
            view.full, namespace=namespace or namespace_for(backend), jobs=view.jobs
        )
        n = write_events(events, openlineage_path)
        out.info(
            f"wrote {n} OpenLineage events for {len(view.jobs)} jobs to {openlineage_path}",
            quiet=s.quiet,
        )
        return
    from auditor.lineage import render

    if output == "json":
        return out.emit_json(render.to_node_link(view.graph))
    if output == "dot":
        click.echo(render.to_dot(view.graph), nl=False)
        return
    text = render.to_text(view.graph, view.center)
    if not text:
        out.info("no commits yet: nothing has lineage")
    click.echo(text, nl=False)


@cli.command("blame")
@click.argument("ref", metavar="REPO@REF")
@out.output_option()
@pass_settings
def blame(s: Settings, ref: str, output: str) -> None:
    """Which data commits and files are behind the findings of a model, audit or data commit.

    Answers "which commit made the phone call tulips orchids?" in one command.
    """
    from auditor.blame import blame as run_blame

    report = run_blame(s.backend(), ref)
    if output == "json":
        return out.emit_json(report.as_dict())
    click.echo(report.render(), nl=False)
