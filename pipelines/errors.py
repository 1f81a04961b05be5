"""Every error Tulip raises on purpose. Each message names the object and the way out.

The CLI maps these to exit codes in one place (``tulip.cli``); the library never prints
or exits.
"""

from __future__ import annotations


class TulipError(Exception):
    """Base of every expected error: bad input, missing objects, refused operations."""

    exit_code = 2


class InvalidReference(TulipError):
    """A REPO@REF:/PATH string that cannot be parsed."""


class AmbiguousReference(InvalidReference):
    """A short commit ID that starts more than one commit of the repo."""


class InvalidPath(TulipError):
    """A file path that is absolute outside the repo, climbs out with '..', or is otherwise unsafe."""


class RepoNotFound(TulipError):
    pass


class RepoExists(TulipError):
    pass


class BranchNotFound(TulipError):
    pass


class CommitNotFound(TulipError):
    pass


class FileNotFound(TulipError):
    pass


class PipelineNotFound(TulipError):
    pass


class JobNotFound(TulipError):
    pass


class InvalidSpec(TulipError):
    """A pipeline spec that fails the schema or our semantic checks; the message names the field."""


class PipelineCycle(InvalidSpec):
    pass


class CommitConflict(TulipError):
    """The operation cannot proceed given the state of the commit graph (e.g. not a head)."""


class BranchMoved(CommitConflict):
    """A commit meant for one head of a branch (``start_commit(expect_head=...)``) found the
    branch moved on; nothing was committed."""


class SourceChanged(TulipError):
    """A local file changed or vanished while it was being read; nothing was committed."""


class StorageFull(TulipError):
    """The disk (or a quota, or a file-size limit) ran out while writing; nothing was committed."""


class StoreCorrupt(TulipError):
    """fsck found an inconsistency; the message says what and where."""


class NotApplicable(TulipError):
    """The operation exists, but not for this backend (``tulip fsck`` on a cluster, say)."""


class BackendUnavailable(TulipError):
    """A remote backend (a Pachyderm cluster) cannot be reached."""


class UnsupportedCluster(TulipError):
    """The cluster answers, but its pachd lacks an API Tulip needs; the message names the
    feature and the pachd release that added it."""


class GateBlocked(TulipError):
    """A model was refused because its audit failed or is missing."""

    exit_code = 3
