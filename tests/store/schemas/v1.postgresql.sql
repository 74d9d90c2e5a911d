-- A job table as schema version 1 made it on Postgres (dbdict_celery/store/schema.py at 45d110f~1).
-- Frozen: never edit. {table} stands for the table's name.
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
    PRIMARY KEY (id),
    UNIQUE (param_hash)
);
CREATE INDEX "{table}_booking" ON "{table}" (status, priority DESC, id);
CREATE INDEX "{table}_experiment" ON "{table}" (experiment, status);
