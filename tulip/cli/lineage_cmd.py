"""`tulip lineage` and `tulip blame`: the lineage graph around a commit, and who to blame."""

from __future__ import annotations

from pathlib import Path

import click

from pipelines.refs import parse_ref

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
@click.option("--namespace", help="OpenLineage namespace (default tulip://<store>)")
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
    from auditor import lineage as lin

    backend = s.backend()
    direction = direction or "both"
    G = lin.build_graph(backend, include_files=False)
    center = None
    if ref:
        center = lin.node_for_ref(backend, ref)
        if center.startswith("file:"):
            lin.add_file_versions(G, backend, [parse_ref(ref).repo])
        lin.require_node(G, center)
        lin.add_file_versions(G, backend, _data_repos_near(G, center))
    elif files:
        lin.add_file_versions(G, backend, _all_data_repos(G))

    if diff_ref:
        if center is None:
            raise click.UsageError("--diff needs REF: tulip lineage MODEL_A --diff MODEL_B")
        other = lin.node_for_ref(backend, diff_ref)
        lin.require_node(G, other)
        lin.add_file_versions(G, backend, _data_repos_near(G, other))
        diff = lin.training_data_diff(G, _model_or_commit(G, center), _model_or_commit(G, other))
        if output == "json":
            return out.emit_json(diff.as_dict())
        return _print_diff(G, diff)

    H = lin.subgraph(G, center, direction) if center else G
    if not files:
        H = H.copy()
        H.remove_nodes_from([n for n, a in list(H.nodes(data=True)) if a.get("type") == lin.FILE])

    if openlineage_path is not None:
        from auditor import openlineage as ol

        jobs = [n for n, a in H.nodes(data=True) if a.get("type") == lin.JOB]
        events = ol.run_events(G, namespace=namespace or ol.namespace_for(backend), jobs=jobs)
        n = ol.write_events(events, openlineage_path)
        out.info(
            f"wrote {n} OpenLineage events for {len(jobs)} jobs to {openlineage_path}",
            quiet=s.quiet,
        )
        return
    if output == "json":
        return out.emit_json(lin.to_node_link(H))
    if output == "dot":
        click.echo(lin.to_dot(H), nl=False)
        return
    _print_table(H, center)


def _all_data_repos(G) -> list[str]:
    from auditor import lineage as lin

    return sorted(
        {
            a["repo"]
            for _n, a in G.nodes(data=True)
            if a.get("type") == lin.COMMIT and a.get("kind") == lin.DATA
        }
    )


def _data_repos_near(G, center: str) -> list[str]:
    """Data repos whose history the queries around ``center`` need."""
    from auditor import lineage as lin

    attrs = G.nodes[center]
    repos = (
        {attrs["repo"]} if attrs.get("kind") == lin.DATA or attrs.get("type") == lin.FILE else set()
    )
    for n in lin.upstream(G, center, kinds=[lin.COMMIT], history=False):
        if G.nodes[n].get("kind") == lin.DATA:
            repos.add(G.nodes[n]["repo"])
    return sorted(repos)


def _model_or_commit(G, node: str) -> str:
    from auditor import lineage as lin

    for _u, v, k in G.out_edges(node, keys=True):
        if k == lin.IS_MODEL:
            return v
    return node


def _print_table(G, center: str | None) -> None:
    from auditor import lineage as lin

    groups = lin.grouped(G, [n for n in G.nodes if G.nodes[n].get("type") != lin.REPO])
    if not groups:
        out.info("no commits yet: nothing has lineage")
    first = True
    for kind, nodes in groups.items():
        if not first:
            click.echo("")
        first = False
        click.echo(f"{kind.upper()}S ({len(nodes)})")
        if kind == lin.FILE and len(nodes) > 20:
            by_dir: dict[str, list[str]] = {}
            for n in nodes:
                a = G.nodes[n]
                by_dir.setdefault(f"{a['repo']}:{a['path'].rsplit('/', 1)[0]}/", []).append(n)
            out.table(
                ["  FOLDER", "FILE VERSIONS", "BYTES"],
                [
                    (f"  {d}", len(ns), sum(G.nodes[n].get("size") or 0 for n in ns))
                    for d, ns in sorted(by_dir.items())
                ],
            )
            continue
        out.table(
            ["  NODE", "WHEN", "DETAILS"],
            [
                (
                    ("* " if n == center else "  ") + n,
                    out.when(G.nodes[n].get("started") or G.nodes[n].get("created")),
                    lin.describe(G.nodes[n]),
                )
                for n in nodes
            ],
        )


def _print_diff(G, diff) -> None:
    click.echo(f"A: {diff.a}  (data: {', '.join(diff.data_a) or '-'})")
    click.echo(f"B: {diff.b}  (data: {', '.join(diff.data_b) or '-'})")
    click.echo(
        f"{len(diff.added)} files added, {len(diff.removed)} removed, "
        f"{len(diff.modified)} changed from A to B"
    )
    if diff.classes_added:
        click.echo("classes added: " + ", ".join(diff.classes_added))
    if diff.classes_removed:
        click.echo("classes removed: " + ", ".join(diff.classes_removed))
    for c in diff.commits:
        click.echo("")
        desc = f"  {c.description!r}" if c.description else ""
        click.echo(f"{c.repo}@{c.id}  {out.when(c.started)}{desc}")
        for label, items in (("+", c.added), ("-", c.removed), ("~", c.modified)):
            for item in items:
                click.echo(f"  {label} {item}")


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
