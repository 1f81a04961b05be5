"""Entry point, and the one place where outcomes and errors become exit codes: ``EXIT_CODES``.

==  ========================================================================================
0   success, including an audit that passes or warns; also a reader that closed the pipe
    (``tulip list job | head -1``)
3   a refusal: a failing audit (or a warn under ``--fail-on warn``), a model the gate blocks
    (``GateBlocked``), a model file modified since export, a platform flagged under
    ``--strict``
2   bad usage or input: any other ``TulipError``, and click's usage errors
1   an unexpected error (a bug: rerun with ``--verbose`` for the traceback)
130 interrupted (Ctrl-C)
==  ========================================================================================

Commands never exit themselves: they raise, and ``main`` looks the exception up here.
"""

from __future__ import annotations

import os
import sys
import traceback

import click

from pipelines.errors import GateBlocked, TulipError

from .base import Refused, Settings, cli

# First match wins, so a subclass comes before its base.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (Refused, 3),
    (GateBlocked, 3),
    (TulipError, 2),
    (click.ClickException, 2),
    (click.exceptions.Abort, 130),
    (KeyboardInterrupt, 130),
    (BrokenPipeError, 0),
    (BaseException, 1),
)


def exit_code(error: BaseException) -> int:
    return next(code for kind, code in EXIT_CODES if isinstance(error, kind))


def _register() -> None:
    from . import data, maintenance, pipelines_cmd  # noqa: F401  (commands attach themselves)

    for name in (
        "audit_cmd",
        "lineage_cmd",
        "review_cmd",
        "serve_cmd",
        "mobile_cmd",
        "demo_cmd",
        "alerts_cmd",
        "deploy_cmd",
        "synth_cmd",
    ):
        try:
            __import__(f"tulip.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"tulip.cli.{name}":
                raise


_register()


def _report(error: BaseException, settings: Settings) -> None:
    """One line on stderr for the error (a traceback too with --verbose, for a bug)."""
    if isinstance(error, Refused):
        if str(error):
            click.echo(f"tulip: {error}", err=True)
    elif isinstance(error, TulipError):
        click.echo(f"tulip: error: {error}", err=True)
        if settings.verbose:
            traceback.print_exception(error)
    elif isinstance(error, click.ClickException):
        error.show()
    elif isinstance(error, click.exceptions.Abort):
        click.echo("tulip: aborted", err=True)
    elif isinstance(error, KeyboardInterrupt):
        click.echo("tulip: interrupted", err=True)
    elif isinstance(error, BrokenPipeError):
        pass
    else:
        click.echo(f"tulip: unexpected error: {type(error).__name__}: {error}", err=True)
        if settings.verbose:
            traceback.print_exception(error)
        else:
            click.echo("tulip: rerun with --verbose for the traceback", err=True)


def _quiet_closed_stdout() -> None:
    """The reader went away: point stdout at /dev/null so the exit flush cannot fail too."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: list[str] | None = None) -> None:
    from training.runtime import VERBOSE_ENV, quiet_tensorflow

    settings = Settings()
    # TensorFlow's native start-up lines stay off the terminal unless -v (asked at import).
    quiet_tensorflow(lambda: not settings.verbose)
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        # Not cli.main(): click turns a closed pipe into exit 1 there, and exits by itself.
        with cli.make_context("tulip", args, obj=settings) as ctx:
            if settings.verbose:
                os.environ[VERBOSE_ENV] = "1"  # the runner and the stages it starts
            cli.invoke(ctx)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at exit
    except click.exceptions.Exit as e:  # --help, --version
        sys.exit(e.exit_code)
    except BaseException as error:  # the one place errors become exit codes
        if isinstance(error, SystemExit):
            raise
        if isinstance(error, BrokenPipeError):
            _quiet_closed_stdout()
            pending = settings.pending_refusal
            sys.exit(0 if pending is None else exit_code(pending))
        _report(error, settings)
        sys.exit(exit_code(error))
    sys.exit(0)


if __name__ == "__main__":
    main()
