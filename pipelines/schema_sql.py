"""The embedded store's SQLite schema, as named migrations applied in order.

``PRAGMA user_version`` records how many have run. Never edit a migration that has shipped;
add the next one.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "initial data model",
        """
        CREATE TABLE repos (
            name        TEXT PRIMARY KEY,
            type        TEXT NOT NULL CHECK (type IN ('user', 'spec')),
            description TEXT NOT NULL DEFAULT '',
            created     REAL NOT NULL,
            pipeline    TEXT
        );
        CREATE TABLE branches (
            repo TEXT NOT NULL REFERENCES repos(name) ON DELETE CASCADE,
            name TEXT NOT NULL,
            head TEXT,
            PRIMARY KEY (repo, name)
        );
        CREATE TABLE branch_provenance (
            repo        TEXT NOT NULL,
            branch      TEXT NOT NULL,
            prov_repo   TEXT NOT NULL,
            prov_branch TEXT NOT NULL,
            PRIMARY KEY (repo, branch, prov_repo, prov_branch),
            FOREIGN KEY (repo, branch) REFERENCES branches(repo, name) ON DELETE CASCADE
        );
        CREATE TABLE commits (
            repo        TEXT NOT NULL REFERENCES repos(name) ON DELETE CASCADE,
            id          TEXT NOT NULL,
            branch      TEXT,
            origin      TEXT NOT NULL CHECK (origin IN ('USER', 'AUTO')),
            parent      TEXT,
            started     REAL NOT NULL,
            finished    REAL,
            size_bytes  INTEGER NOT NULL DEFAULT 0,
            description TEXT NOT NULL DEFAULT '',
            error       TEXT,
            metadata    TEXT NOT NULL DEFAULT '{}',
            seq         INTEGER NOT NULL,
            PRIMARY KEY (repo, id)
        );
        CREATE INDEX commits_by_set ON commits(id);
        CREATE INDEX commits_by_branch ON commits(repo, branch, seq);
        CREATE TABLE commit_provenance (
            repo        TEXT NOT NULL,
            id          TEXT NOT NULL,
            prov_repo   TEXT NOT NULL,
            prov_branch TEXT,
            prov_id     TEXT NOT NULL,
            PRIMARY KEY (repo, id, prov_repo, prov_id),
            FOREIGN KEY (repo, id) REFERENCES commits(repo, id) ON DELETE CASCADE
        );
        CREATE INDEX commit_subvenance ON commit_provenance(prov_repo, prov_id);
        CREATE TABLE files (
            repo      TEXT NOT NULL,
            commit_id TEXT NOT NULL,
            path      TEXT NOT NULL,
            hash      TEXT NOT NULL,
            size      INTEGER NOT NULL,
            PRIMARY KEY (repo, commit_id, path),
            FOREIGN KEY (repo, commit_id) REFERENCES commits(repo, id) ON DELETE CASCADE
        ) WITHOUT ROWID;
        CREATE INDEX files_by_hash ON files(hash);
        CREATE TABLE pipelines (
            name        TEXT PRIMARY KEY,
            spec        TEXT NOT NULL,
            version     INTEGER NOT NULL,
            spec_commit TEXT NOT NULL,
            salt        TEXT NOT NULL,
            state       TEXT NOT NULL DEFAULT 'running',
            created     REAL NOT NULL,
            updated     REAL NOT NULL
        );
        CREATE TABLE jobs (
            pipeline       TEXT NOT NULL,
            id             TEXT NOT NULL,
            state          TEXT NOT NULL,
            reason         TEXT,
            created        REAL NOT NULL,
            started        REAL,
            finished       REAL,
            data_processed INTEGER NOT NULL DEFAULT 0,
            data_skipped   INTEGER NOT NULL DEFAULT 0,
            data_failed    INTEGER NOT NULL DEFAULT 0,
            data_recovered INTEGER NOT NULL DEFAULT 0,
            data_total     INTEGER NOT NULL DEFAULT 0,
            spec_version   INTEGER NOT NULL,
            seq            INTEGER NOT NULL,
            PRIMARY KEY (pipeline, id)
        );
        CREATE INDEX jobs_by_state ON jobs(state, seq);
        CREATE TABLE datums (
            pipeline TEXT NOT NULL,
            job_id   TEXT NOT NULL,
            hash     TEXT NOT NULL,
            state    TEXT NOT NULL,
            files    TEXT NOT NULL,
            tries    INTEGER NOT NULL DEFAULT 0,
            reason   TEXT,
            started  REAL,
            finished REAL,
            PRIMARY KEY (pipeline, job_id, hash),
            FOREIGN KEY (pipeline, job_id) REFERENCES jobs(pipeline, id) ON DELETE CASCADE
        );
        -- The outputs of the last successful run of each datum hash: what a skipped datum
        -- carries over.
        CREATE TABLE datum_results (
            pipeline TEXT NOT NULL,
            hash     TEXT NOT NULL,
            job_id   TEXT NOT NULL,
            finished REAL NOT NULL,
            PRIMARY KEY (pipeline, hash)
        );
        CREATE TABLE datum_outputs (
            pipeline  TEXT NOT NULL,
            hash      TEXT NOT NULL,
            path      TEXT NOT NULL,
            file_hash TEXT NOT NULL,
            size      INTEGER NOT NULL,
            PRIMARY KEY (pipeline, hash, path),
            FOREIGN KEY (pipeline, hash) REFERENCES datum_results(pipeline, hash) ON DELETE CASCADE
        ) WITHOUT ROWID;
        CREATE INDEX datum_outputs_by_hash ON datum_outputs(file_hash);
        CREATE TABLE services (
            pipeline TEXT PRIMARY KEY,
            pid      INTEGER,
            port     INTEGER,
            url      TEXT,
            job_id   TEXT,
            started  REAL,
            state    TEXT NOT NULL
        );
        CREATE TABLE counters (
            name  TEXT PRIMARY KEY,
            value INTEGER NOT NULL
        );
        """,
    ),
    (
        "event outbox",
        """
        -- Events written in the same transaction as the result they report, delivered later.
        CREATE TABLE outbox (
            id      TEXT PRIMARY KEY,
            type    TEXT NOT NULL,
            subject TEXT NOT NULL,
            time    REAL NOT NULL,
            data    TEXT NOT NULL,
            seq     INTEGER NOT NULL
        );
        CREATE TABLE deliveries (
            event_id     TEXT NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
            endpoint     TEXT NOT NULL,
            state        TEXT NOT NULL,
            attempts     INTEGER NOT NULL DEFAULT 0,
            next_attempt REAL,
            last_status  INTEGER,
            last_error   TEXT,
            delivered    REAL,
            PRIMARY KEY (event_id, endpoint)
        );
        CREATE INDEX deliveries_due ON deliveries(state, next_attempt);
        CREATE TABLE endpoints (
            name     TEXT PRIMARY KEY,
            url      TEXT NOT NULL,
            disabled REAL,
            reason   TEXT
        );
        """,
    ),
]
