"""How a Tulip process meets TensorFlow, and how every stage script runs.

TensorFlow's native code writes its start-up lines (oneDNN, ``cudart_stub``, ``cuInit``,
``cpu_feature_guard``) straight to file descriptor 2 while ``import tensorflow`` runs, before
any Python logging exists and whatever ``TF_CPP_MIN_LOG_LEVEL`` says. ``quiet_tensorflow``
installs an import hook: the first import of TensorFlow, from anywhere (Keras included), runs
with descriptor 2 pointed at ``/dev/null``, GPUs probed under it too, so those lines reach
neither a terminal nor a job log. ``tulip -v`` (or ``TULIP_VERBOSE=1``) leaves them alone.

``stage_main`` is the one wrapper of the stage scripts (``training.embed``, ``training.train``,
``auditor.stage``, ``conversion.convert``): TensorFlow quiet, logging to stderr, the stage's
one-line summary on success, and on a named error one line that the engine records as the
job's reason. The exit status tells the engine whether running the datum again can help:

==  =======================================================================================
0   done
2   refused input (any ``TulipError``): the same input fails the same way
3   the gate blocked the model (``GateBlocked``): a decision, not a transient failure
1   anything else (a bug, or the machine): the traceback is in the log
==  =======================================================================================
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import os
import sys
from collections.abc import Callable

from pipelines.errors import GateBlocked, TulipError

VERBOSE_ENV = "TULIP_VERBOSE"
STAGE_EXIT_BLOCKED = 3
STAGE_EXIT_REFUSED = 2


def verbose_requested() -> bool:
    return os.environ.get(VERBOSE_ENV, "").lower() not in ("", "0", "false", "no")


class _QuietLoader(importlib.abc.Loader):
    """TensorFlow's own loader, run with descriptor 2 muted."""

    def __init__(self, loader: importlib.abc.Loader, quiet: Callable[[], bool]):
        self._loader = loader
        self._quiet = quiet

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        if not self._quiet():
            self._loader.exec_module(module)
            return
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the lines logged after start-up
        sys.stderr.flush()
        saved = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        try:
            self._loader.exec_module(module)
            config = getattr(module, "config", None)
            if config is not None:
                config.list_physical_devices("GPU")  # cuInit speaks here
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            os.close(null)


class _QuietFinder(importlib.abc.MetaPathFinder):
    def __init__(self, quiet: Callable[[], bool]):
        self.quiet = quiet

    def find_spec(self, fullname, path, target=None):
        if fullname != "tensorflow":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader, self.quiet)
        return spec


def quiet_tensorflow(quiet: Callable[[], bool] | None = None) -> None:
    """Mute TensorFlow's native start-up lines, if it has not been imported yet.

    ``quiet()`` is asked when TensorFlow is first imported (default: unless
    ``$TULIP_VERBOSE``), so a ``-v`` parsed after this call still counts.
    """
    if "tensorflow" in sys.modules or any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        return
    ask = quiet or (lambda: not verbose_requested())
    sys.meta_path.insert(0, _QuietFinder(ask))


def stage_main(name: str, body: Callable[[], str]) -> int:
    """Run a stage's ``body`` (which returns its summary line); returns the exit status."""
    quiet_tensorflow()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        summary = body()
    except GateBlocked as e:  # its message starts "gate blocked:", the job's reason as it is
        print(e, file=sys.stderr)
        return STAGE_EXIT_BLOCKED
    except TulipError as e:
        print(f"{name} failed: {e}", file=sys.stderr)
        return STAGE_EXIT_REFUSED
    print(summary, file=sys.stderr)
    return 0
