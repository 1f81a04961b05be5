"""The embedded engine's store: one SQLite file and content-addressed blobs under a root.

Nothing outside this package runs SQL on that file (``reports.alerts`` keeps its own tables
in it through :class:`pipelines.embedded.db.Database`). Modules, lowest first:

* ``db``: connections, transactions, recorded migrations;
* ``commits``, ``manifests``, ``outbox``, ``services``: the tables of commits, of the files
  each commit holds, of events, of service processes;
* ``jobs``: the queue the engine (``pipelines.runner``) works through, its only API;
* ``launch``: the runner lock and starting a runner;
* ``store``: ``EmbeddedStore``, the :class:`pipelines.backend.Backend` over all of them.
"""
