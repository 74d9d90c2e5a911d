-- A job table, its attempt table and its metric table as schema version 6 made them on Postgres (dbdict_celery/store/schema.py at 1b28cf3).
-- Frozen: never edit. {table} stands for the job table's name.
CREATE TABLE "{table}" (
    id BIGSERIAL NOT NULL,
    status SMALLINT DEFAULT '0' NOT NULL,
    priority FLOAT DEFAULT '1.0' NOT NULL,
    experiment TEXT NOT NULL,
    params JSONB NOT NULL,
    state JSONB NOT NULL,
    param_hash VARCHAR(64) NOT NULL,
    attempts INTEGER DEFAULT '0' NOT NULL,
    run_id VARCHAR(32),
    host TEXT,
    pid INTEGER,
    workdir TEXT,
    exproot TEXT,
    task_id TEXT,
    cancel_requested BOOLEAN DEFAULT false NOT NULL,
    heartbeat_at TIMESTAMP WITH TIME ZONE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    started_at TIMESTAMP WITH TIME ZONE,
    finished_at TIMESTAMP WITH TIME ZONE,
    error TEXT,
    queue TEXT,
    study TEXT,
    trial INTEGER,
    prune_requested BOOLEAN DEFAULT false NOT NULL,
    limits JSONB,
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
    id BIGSERIAL NOT NULL,
    job_id BIGINT NOT NULL,
    attempt INTEGER NOT NULL,
    run_id VARCHAR(32) NOT NULL,
    task_id TEXT,
    worker TEXT,
    host TEXT,
    pid INTEGER,
    started_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    finished_at TIMESTAMP WITH TIME ZONE,
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
    variables JSONB,
    hardware JSONB,
    devices TEXT,
    PRIMARY KEY (id),
    UNIQUE (run_id)
);
CREATE INDEX "{table}_attempt_job" ON "{table}_attempt" (job_id, id);
CREATE INDEX "{table}_attempt_open" ON "{table}_attempt" (job_id) WHERE outcome IS NULL;
CREATE TABLE "{table}_metric" (
    job_id BIGINT NOT NULL,
    key TEXT NOT NULL,
    step BIGINT NOT NULL,
    value FLOAT,
    run_id VARCHAR(32) NOT NULL,
    PRIMARY KEY (job_id, key, step)
);
CREATE INDEX "{table}_metric_step" ON "{table}_metric" (key, step);
