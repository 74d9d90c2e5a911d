-- A job table as schema version 2 made it on SQLite (dbdict_celery/store/schema.py at 2ae8d3d~1).
-- Frozen: never edit. {table} stands for the table's name.
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
    PRIMARY KEY (id),
    UNIQUE (param_hash)
);
CREATE INDEX "{table}_booking" ON "{table}" (status, priority DESC, id);
CREATE INDEX "{table}_experiment" ON "{table}" (experiment, status);
