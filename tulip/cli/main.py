"""Entry point, and the one place errors become exit codes.

Exit codes: 0 success (an audit that passes or warns), 3 a failing audit or a blocked gate,
2 bad usage or input (any ``TulipError``), 1 an unexpected error (a bug: rerun with
``--verbose`` for the traceback).
"""

from __future__ import annotations

import sys
import traceback

import click

from pipelines.errors import TulipError

from .base import Settings, cli


def _register() -> None:
    from . import data, maintenance, pipelines_cmd  # noqa: F401  (commands attach themselves)

    for name in (
        "audit_cmd",
        "lineage_cmd",
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


def main(argv: list[str] | None = None) -> None:
    settings = Settings()
    try:
        # Without standalone mode, click returns ctx.exit()'s code instead of exiting.
        code = cli.main(args=argv, prog_name="tulip", standalone_mode=False, obj=settings)
        if isinstance(code, int) and code:
            sys.exit(code)
    except click.exceptions.Abort:
        click.echo("tulip: aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(2 if e.exit_code == 1 else e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except TulipError as e:
        click.echo(f"tulip: error: {e}", err=True)
        if settings.verbose:
            traceback.print_exc()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("tulip: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(0)
    except Exception as e:
        click.echo(f"tulip: unexpected error: {type(e).__name__}: {e}", err=True)
        if settings.verbose:
            traceback.print_exc()
        else:
            click.echo("tulip: rerun with --verbose for the traceback", err=True)
        sys.exit(1)
    sys.exit(0)


if __name__ == "__main__":
    main()
