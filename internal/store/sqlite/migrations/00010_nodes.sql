-- The cluster's nodes and leases, SQLite dialect (the PostgreSQL dialect
-- has the same in postgres/migrations/00010_nodes.sql). A node row is held
-- by one running process (instance) per site ID, kept alive by its
-- heartbeat; a lease names the node that runs a singleton duty, with a
-- term that grows at each change of holder. Expand-only. Times are
-- INTEGER unix microseconds in UTC.

-- +goose Up
CREATE TABLE nodes (
    site_id        INTEGER PRIMARY KEY,
    instance       TEXT NOT NULL,
    name           TEXT NOT NULL,
    address        TEXT NOT NULL DEFAULT '',
    version        TEXT NOT NULL DEFAULT '',
    schema_version INTEGER NOT NULL DEFAULT 0,
    mode           TEXT NOT NULL DEFAULT 'normal',
    started        INTEGER NOT NULL,
    heartbeat      INTEGER NOT NULL
);

CREATE TABLE leases (
    name     TEXT PRIMARY KEY,
    holder   INTEGER NOT NULL,
    instance TEXT NOT NULL,
    term     INTEGER NOT NULL,
    expires  INTEGER NOT NULL
);

-- +goose Down
DROP TABLE leases;
DROP TABLE nodes;
