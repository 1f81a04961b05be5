"""The command tree's trunk: global options, settings, and the pachctl-style verb groups.

Command modules attach their verbs to these groups; ``main.py`` imports them and runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import click

from pipelines import __version__
from pipelines.backend import Backend
from pipelines.connect import default_root
from pipelines.errors import TulipError


class Refused(Exception):
    """A command whose result is a refusal (exit 3, see ``main.EXIT_CODES``): a failing audit,
    a modified model file, a flagged platform under ``--strict``. Raised once the result is out;
    the message, if any, is one more line on stderr."""


@dataclass
class Settings:
    root: Path | None = None
    backend_name: str | None = None
    quiet: bool = False
    verbose: bool = False
    #: the refusal a command will raise once its output is written, kept here so that a reader
    #: closing the pipe early (``| head -1``) does not turn a failing audit into exit 0
    pending_refusal: Refused | None = None
    _backend: Backend | None = field(default=None, repr=False)

    def refuse_after_output(self, refusal: Refused | None) -> Refused | None:
        self.pending_refusal = refusal
        return refusal

    @property
    def store_root(self) -> Path:
        return Path(self.root) if self.root else default_root()

    def backend(self, *, create: bool = False) -> Backend:
        """The store, opened once. Read-only verbs do not create a store where there is none."""
        if self._backend is None:
            from pipelines.backend import BACKEND_ENV
            from pipelines.connect import open_backend

            kind = (self.backend_name or os.environ.get(BACKEND_ENV) or "embedded").lower()
            if kind == "embedded" and not create and not (self.store_root / "tulip.db").exists():
                raise TulipError(
                    f"no Tulip store at {self.store_root.absolute()}; pass --root DIR or set "
                    "$TULIP_ROOT, or start one with `tulip create repo NAME`"
                )
            self._backend = open_backend(self.store_root, backend=kind)
        return self._backend

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()


def _set(attr: str):
    def callback(ctx: click.Context, _param, value):
        if value not in (None, False):
            setattr(ctx.ensure_object(Settings), attr, value)
        return value

    return callback


def global_options(f):
    """--root/--backend/--quiet/--verbose, accepted before or after the verb."""
    f = click.option(
        "--root",
        type=click.Path(file_okay=False, path_type=Path),
        expose_value=False,
        callback=_set("root"),
        help="store directory (default $TULIP_ROOT, else ./.tulip)",
    )(f)
    f = click.option(
        "--backend",
        type=click.Choice(["embedded", "pachyderm"]),
        expose_value=False,
        callback=_set("backend_name"),
        help="where data lives (default $TULIP_BACKEND, else embedded)",
    )(f)
    f = click.option(
        "-q",
        "--quiet",
        is_flag=True,
        expose_value=False,
        callback=_set("quiet"),
        help="no progress bars or narration",
    )(f)
    f = click.option(
        "-v",
        "--verbose",
        is_flag=True,
        expose_value=False,
        callback=_set("verbose"),
        help="tracebacks for unexpected errors",
    )(f)
    return f


class TulipGroup(click.Group):
    """Leaf commands get the global options too, so `tulip list repo --root X` works."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if not isinstance(cmd, click.Group):
            global_options(cmd)
        super().add_command(cmd, name)

    def group(self, *args, **kwargs):
        kwargs.setdefault("cls", TulipGroup)
        return super().group(*args, **kwargs)


@click.group(
    cls=TulipGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@global_options
@click.version_option(__version__, prog_name="tulip")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Tulip: provenance auditing and data quality for edge ML pipelines.

    Versioned data in, audited TensorFlow Lite models out, every model traceable to the
    commits it came from. Pachyderm-style verbs (repos, commits, files, pipelines, jobs)
    run on an embedded store by default, or on a real cluster with --backend pachyderm.
    """
    ctx.ensure_object(Settings)
    ctx.call_on_close(ctx.obj.close)


@cli.group()
def create() -> None:
    """Create a repo, branch or pipeline."""


@cli.group(name="list")
def list_() -> None:
    """List repos, branches, commits, files, pipelines, jobs or datums."""


@cli.group()
def inspect() -> None:
    """Show one repo, commit, file, pipeline or job in detail."""


@cli.group()
def delete() -> None:
    """Delete a file, commit, repo or pipeline."""


@cli.group()
def put() -> None:
    """Put files into a repo."""


@cli.group()
def get() -> None:
    """Get a file out of a repo."""


@cli.group()
def find() -> None:
    """Find the commits that changed a path."""


@cli.group()
def diff() -> None:
    """Compare files between two commits."""


@cli.group()
def wait() -> None:
    """Wait for processing to finish."""


@cli.group()
def update() -> None:
    """Update a pipeline."""


@cli.group()
def start() -> None:
    """Start (resume) a pipeline."""


@cli.group()
def stop() -> None:
    """Stop a pipeline (and its service)."""


pass_settings = click.make_pass_decorator(Settings, ensure=True)
