-- A job table, its attempt table and its metric table as schema version 6 made them on SQLite (dbdict_celery/store/schema.py at 1b28cf3).
-- Frozen: never edit. {table} stands for the job table's name.
CREATE TABLE "{table}" (
    id INTEGER NOT NULL,
    status SMALLINT DEFAULT '0' NOT NULL,
    priority FLOAT DEFAULT '1.0' NOT NULL,
    experiment TEXT NOT NULL,
    params JSON NOT NULL,
    state JSON NOT NULL,
    param_hash VARCHAR(64) NOT NULL,
    attempts INTEGER DEFAULT '0' NOT NULL,
    run_id VARCHAR(32),
    host TEXT,
    pid INTEGER,
    workdir TEXT,
    exproot TEXT,
    task_id TEXT,
    cancel_requested BOOLEAN DEFAULT 0 NOT NULL,
    heartbeat_at DATETIME,
    created_at DATETIME DEFAULT (STRFTIME('%Y-%m-%d %H:%M:%f', 'now')) NOT NULL,
    started_at DATETIME,
    finished_at DATETIME,
    error TEXT,
    queue TEXT,
    study TEXT,
    trial INTEGER,
    prune_requested BOOLEAN DEFAULT 0 NOT NULL,
    limits JSON,
    run_group TEXT,
    max_running INTEGER,
    sole_task_id TEXT,
    PRIMARY KEY (id),
    UNIQUE (param_hash)
);
CREATE INDEX "{table}_booking" ON "{table}" (status, priority DESC, id);
CREATE INDEX "{table}_experiment" ON "{table}" (experiment, status);
CREATE INDEX "{table}_group" ON "{table}" (run_group, status);
CREATE INDEX "{table}_study" ON "{table}" (study, trial);
CREATE TABLE "{table}_attempt" (
    id INTEGER NOT NULL,
    job_id BIGINT NOT NULL,
    attempt INTEGER NOT NULL,
    run_id VARCHAR(32) NOT NULL,
    task_id TEXT,
    worker TEXT,
    host TEXT,
    pid INTEGER,
    started_at DATETIME DEFAULT (STRFTIME('%Y-%m-%d %H:%M:%f', 'now')) NOT NULL,
    finished_at DATETIME,
    outcome TEXT,
    reason TEXT,
    error TEXT,
    code_commit TEXT,
    code_branch TEXT,
    code_dirty BOOLEAN,
    code_repository TEXT,
    python TEXT,
    platform TEXT,
    environment VARCHAR(64),
    variables JSON,
    hardware JSON,
    devices TEXT,
    PRIMARY KEY (id),
    UNIQUE (run_id)
);
CREATE INDEX "{table}_attempt_job" ON "{table}_attempt" (job_id, id);
CREATE INDEX "{table}_attempt_open" ON "{table}_attempt" (job_id) WHERE outcome IS NULL;
CREATE TABLE "{table}_metric" (
    job_id BIGINT NOT NULL,
    "key" TEXT NOT NULL,
    step BIGINT NOT NULL,
    value FLOAT,
    run_id VARCHAR(32) NOT NULL,
    PRIMARY KEY (job_id, "key", step)
);
CREATE INDEX "{table}_metric_step" ON "{table}_metric" ("key", step);
