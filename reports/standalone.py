"""The standalone ``report.html``: one self-contained file per audit, readable with no server and
no network.

CSS and JS are inlined from ``reports/static``, thumbnails are downscaled JPEG ``data:`` URIs
(at most ``THUMBS_PER_SIDE`` per class side by side, and ``ISSUE_THUMBS`` for per-image
findings), charts are inline SVG, the audit document rides along in a
``<script type="application/json">`` block (``</`` escaped) read with ``JSON.parse``. A
Content-Security-Policy meta tag forbids any network fetch, so nothing can leak or break.

The Audit stage calls it with its inputs mounted as directories::

    html = render_report(doc, images=images_from_dirs({"flower_photos": Path("/pfs/flower_photos"),
                                                       "label_reference": Path("/pfs/label_reference")}),
                         lineage=to_node_link(subgraph(G, node)))

``images(repo, path) -> bytes | None`` gives a file's bytes; if it also has a
``list(repo, label, limit) -> [paths]`` method (``images_from_dirs`` and
``images_from_backend`` do), the side-by-side view fills up from the class folders.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import logging
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from markupsafe import Markup

from pipelines.errors import InvalidPath, TulipError
from pipelines.layout import parse_json
from pipelines.refs import normalize_path

from .audit_view import FINDINGS_SHOWN_PER_CHECK, Source, build_view, chart_markup
from .thumbnails import NotAnImage, is_image_path, make_thumbnail

log = logging.getLogger(__name__)

ISSUE_THUMBS = 24
THUMB_QUALITY = 70
CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'"
)
DOWNLOAD_JS = """(function () {
  var button = document.getElementById("download-json");
  if (!button) return;
  button.addEventListener("click", function () {
    var doc = JSON.parse(document.getElementById("audit-data").textContent);
    var blob = new Blob([JSON.stringify(doc, null, 1)], {type: "application/json"});
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "audit.json";
    document.body.appendChild(a);
    a.click();
    a.remove();
  });
})();"""

ImageSource = Callable[[str, str], bytes | None]


class DirectoryImages:
    """``images`` for a stage: repo name -> local directory (``/pfs/<repo>``)."""

    def __init__(self, mounts: dict[str, Path]):
        self.mounts = {k: Path(v) for k, v in mounts.items()}

    def _local(self, repo: str, path: str) -> Path | None:
        base = self.mounts.get(repo)
        if base is None:
            return None
        try:
            rel = normalize_path(path).lstrip("/")
        except InvalidPath:
            return None
        target = (base / rel).resolve()
        root = base.resolve()
        return target if target == root or root in target.parents else None

    def __call__(self, repo: str, path: str) -> bytes | None:
        p = self._local(repo, path)
        return p.read_bytes() if p is not None and p.is_file() else None

    def list(self, repo: str, label: str, limit: int) -> list[str]:
        folder = self._local(repo, "/" + label)
        if folder is None or not folder.is_dir() or folder == self.mounts[repo].resolve():
            return []
        found = []
        for p in sorted(folder.rglob("*")):
            if p.is_file() and is_image_path(p.name):
                found.append("/" + p.relative_to(self.mounts[repo].resolve()).as_posix())
                if len(found) >= limit:
                    break
        return found


def images_from_dirs(mounts: dict[str, Path | str]) -> DirectoryImages:
    return DirectoryImages({k: Path(v) for k, v in mounts.items()})


class BackendImages:
    """``images`` over a backend: repo name -> commit ID to read from."""

    def __init__(self, backend, commits: dict[str, str]):
        self.backend = backend
        self.commits = commits

    def __call__(self, repo: str, path: str) -> bytes | None:
        commit = self.commits.get(repo)
        if commit is None:
            return None
        try:
            return self.backend.get_file(repo, commit, path)
        except TulipError:
            return None

    def list(self, repo: str, label: str, limit: int) -> list[str]:
        commit = self.commits.get(repo)
        if commit is None:
            return []
        try:
            folder = normalize_path("/" + label)
            found = []
            for f in self.backend.walk_files(repo, commit, folder):
                if is_image_path(f.path):
                    found.append(f.path)
                    if len(found) >= limit:
                        break
            return found
        except TulipError:
            return []


def images_from_backend(backend, commits: dict[str, str]) -> BackendImages:
    return BackendImages(backend, commits)


def _static(name: str) -> str:
    return resources.files("reports").joinpath("static", name).read_text(encoding="utf-8")


def _safe_inline(code: str, tag: str) -> Markup:
    """Our own CSS/JS, inlined: refuse anything that could close the element early."""
    if f"</{tag}" in code.lower():
        raise ValueError(f"inline {tag} contains '</{tag}'")
    return Markup(code)


def _without_projection_points(doc: dict) -> dict:
    """The embedded JSON copy: everything but bulky projection points (the SVG shows them)."""
    slim = dict(doc)
    for key in ("projection", "embedding_map", "pca", "map_2d"):
        if isinstance(slim.get(key), dict) and "points" in slim[key]:
            slim[key] = {k: v for k, v in slim[key].items() if k != "points"} | {
                "points": "omitted"
            }
    return slim


def _top_findings(doc: dict, per_check: int = FINDINGS_SHOWN_PER_CHECK) -> dict:
    """The embedded JSON copy keeps the findings the page shows (the top ``per_check`` of each
    check and severity by score) and counts the rest in ``findings_omitted``: with 50k
    findings the whole list would make a file of tens of megabytes."""
    findings = doc.get("findings") if isinstance(doc.get("findings"), list) else []
    groups: dict[tuple, list[int]] = {}
    for i, f in enumerate(findings):
        if isinstance(f, dict):
            groups.setdefault((f.get("severity"), f.get("check")), []).append(i)
    keep: set[int] = set()
    omitted: dict[str, int] = {}
    for (_severity, check), rows in groups.items():
        rows.sort(key=lambda i: -(findings[i].get("score") or 0.0) if isinstance(
            findings[i].get("score"), int | float) else 0.0)  # fmt: skip
        keep.update(rows[:per_check])
        if len(rows) > per_check:
            omitted[str(check)] = omitted.get(str(check), 0) + len(rows) - per_check
    if not omitted:
        return doc
    slim = dict(doc)
    slim["findings"] = [f for i, f in enumerate(findings) if i in keep]
    slim["findings_omitted"] = dict(sorted(omitted.items()))
    return slim


def render_report(
    audit_doc: dict,
    *,
    images: ImageSource | None = None,
    lineage: dict | None = None,
    title: str | None = None,
    audit_commit: str | None = None,
    thumb_size: int = 112,
) -> str:
    """The whole report as one HTML string."""
    from .templating import standalone_environment

    env = standalone_environment()
    listing = None
    if images is not None and callable(getattr(images, "list", None)):

        def listing(source: Source, label: str, limit: int) -> list[str]:
            return images.list(source.repo, label, limit)

    view = build_view(audit_doc, listing=listing)
    macros = env.get_template("charts.html").module
    charts = chart_markup(view, macros.heatmap, macros.scatter)

    cache: dict[tuple[str, str, int], str | None] = {}
    budget = {"issues": ISSUE_THUMBS}

    def thumb_src(repo: str, commit: str | None, path: str, size: int = 128) -> str | None:
        if images is None:
            return None
        small = size < 100
        key = (repo, path, size)
        if key in cache:
            return cache[key]
        if small:
            if budget["issues"] <= 0:
                return None
            budget["issues"] -= 1
        try:
            data = images(repo, path)
            if data is None:
                cache[key] = None
                return None
            jpeg = make_thumbnail(data, size if small else thumb_size, quality=THUMB_QUALITY)
        except (NotAnImage, OSError, TulipError) as e:
            log.info("no thumbnail for %s:%s: %s", repo, path, e)
            cache[key] = None
            return None
        cache[key] = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
        return cache[key]

    lineage_view = None
    lineage_svg = None
    if lineage:
        from .lineage_view import from_node_link

        try:
            lineage_view = from_node_link(lineage)
        except (KeyError, TypeError, ValueError) as e:
            log.warning("lineage not drawn: %s", e)
        if lineage_view is not None and lineage_view.nodes:
            lineage_svg = env.get_template("lineage_svg.html").module.lineage_svg(
                lineage_view, lambda node: None
            )

    data = view.data
    shown_title = title or (
        (f"{data.repo}@{data.commit[:10]}" if data.commit else data.repo) if data else "a dataset"
    )
    return env.get_template("standalone.html").render(
        audit=view,
        doc=json.loads(
            json.dumps(_top_findings(_without_projection_points(audit_doc)), default=str)
        ),
        finding_href=lambda i: f"#finding-{i}",
        charts=charts,
        lineage_view=lineage_view,
        lineage_svg=lineage_svg,
        thumb_src=thumb_src,
        commit_href=lambda repo, commit: None,
        standalone=True,
        shown_per_check=FINDINGS_SHOWN_PER_CHECK,
        title=shown_title,
        audit_commit=audit_commit,
        generated=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        csp=CSP,
        css=_safe_inline(_static("tulip.css"), "style"),
        js=_safe_inline(_static("tulip.js"), "script"),
        download_js=_safe_inline(DOWNLOAD_JS, "script"),
    )


def write_report(path: Path, audit_doc: dict, **kwargs) -> Path:
    """Render and write atomically (for the Audit stage's ``/pfs/out/report.html``)."""
    path = Path(path)
    html = render_report(audit_doc, **kwargs)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return path


def _store_lineage(doc: dict) -> dict | None:
    """Inside an engine (the local one's ``$TULIP_ROOT``, or a Pachyderm worker): the data
    commit's lineage, as node-link JSON. ``pipelines.connect.stage_backend`` knows both."""
    data = doc.get("data") if isinstance(doc.get("data"), dict) else {}
    if not data.get("repo") or not data.get("commit"):
        return None
    from auditor.lineage.build import build_graph
    from auditor.lineage.graph import commit_node
    from auditor.lineage.queries import subgraph
    from auditor.lineage.render import to_node_link
    from pipelines.connect import stage_backend

    store = stage_backend()
    if store is None:
        return None
    try:
        G = build_graph(store, include_files=False)
        node = commit_node(data["repo"], data["commit"])
        return to_node_link(subgraph(G, node)) if node in G else None
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    """The Audit stage's second step: ``audit.json`` + the image folders -> ``report.html``."""
    import argparse

    from training.runtime import stage_main

    p = argparse.ArgumentParser(
        prog="python -m reports.standalone",
        description="Write the self-contained report.html of an audit.",
    )
    p.add_argument(
        "--audit", type=Path, default=Path("/pfs/out/audit.json"), help="audit.json to render"
    )
    p.add_argument("--data", type=Path, default=None, help="the audited images (/pfs/<data repo>)")
    p.add_argument("--reference", type=Path, default=None, help="the reference gallery, if any")
    p.add_argument(
        "--lineage", type=Path, default=None, help="node-link JSON of the lineage to draw"
    )
    p.add_argument(
        "--no-store-lineage",
        action="store_true",
        help="do not read the lineage from the store the stage runs in",
    )
    p.add_argument("--out", type=Path, default=Path("/pfs/out/report.html"))
    args = p.parse_args(argv)
    return stage_main("report", lambda: _write_from_args(args))


def _write_from_args(args) -> str:
    import os

    try:
        raw = args.audit.read_bytes()
    except OSError as e:
        raise TulipError(f"cannot read the audit document {args.audit}: {e.strerror}") from e
    doc = parse_json(raw, source=str(args.audit))
    mounts: dict[str, Path] = {}
    for key, folder in (("data", args.data), ("reference", args.reference)):
        where = doc.get(key) if isinstance(doc.get(key), dict) else {}
        if folder is not None and folder.is_dir() and isinstance(where.get("repo"), str):
            mounts[where["repo"]] = folder
    lineage = None
    try:
        if args.lineage is not None:
            lineage = json.loads(args.lineage.read_text(encoding="utf-8"))
        elif not args.no_store_lineage:
            lineage = _store_lineage(doc)
    except Exception as e:  # a report without its lineage picture is still the report
        log.warning("report.html will have no lineage: %s", e)
    try:
        write_report(
            args.out,
            doc,
            images=images_from_dirs(mounts) if mounts else None,
            lineage=lineage,
            audit_commit=os.environ.get("PACH_JOB_ID"),
        )
    except (OSError, ValueError) as e:
        raise TulipError(f"cannot write the report {args.out}: {e}") from e
    return f"report written to {args.out}"


if __name__ == "__main__":
    raise SystemExit(main())
