-- The cluster's nodes and leases, PostgreSQL dialect (the SQLite dialect
-- has the same in sqlite/migrations/00010_nodes.sql). A node row is held
-- by one running process (instance) per site ID, kept alive by its
-- heartbeat; a lease names the node that runs a singleton duty, with a
-- term that grows at each change of holder. Expand-only. Times are
-- timestamptz.

-- +goose Up
CREATE TABLE nodes (
    site_id        INTEGER PRIMARY KEY,
    instance       TEXT NOT NULL,
    name           TEXT NOT NULL,
    address        TEXT NOT NULL DEFAULT '',
    version        TEXT NOT NULL DEFAULT '',
    schema_version BIGINT NOT NULL DEFAULT 0,
    mode           TEXT NOT NULL DEFAULT 'normal',
    started        timestamptz NOT NULL,
    heartbeat      timestamptz NOT NULL
);

CREATE TABLE leases (
    name     TEXT PRIMARY KEY,
    holder   INTEGER NOT NULL,
    instance TEXT NOT NULL,
    term     BIGINT NOT NULL,
    expires  timestamptz NOT NULL
);

-- +goose Down
DROP TABLE leases;
DROP TABLE nodes;
