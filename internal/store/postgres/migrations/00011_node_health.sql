-- Each node's own view of its health, PostgreSQL dialect (the SQLite
-- dialect has the same in sqlite/migrations/00011_node_health.sql): what
-- only the node can know, recorded by it every second for `lobby health`
-- and GET /api/v1/health to read. One row per node, replaced at each
-- record; removed with the node. Expand-only. Times are timestamptz;
-- durations are BIGINT microseconds; JSON is jsonb.

-- +goose Up
CREATE TABLE node_health (
    site_id          INTEGER PRIMARY KEY REFERENCES nodes (site_id) ON DELETE CASCADE,
    instance         TEXT NOT NULL,
    recorded         timestamptz NOT NULL, -- by the database's clock
    clock_skew_us    BIGINT NOT NULL DEFAULT 0,
    store_rtt_us     BIGINT NOT NULL DEFAULT 0,
    loop_lag_us      BIGINT NOT NULL DEFAULT 0,
    not_ready        TEXT NOT NULL DEFAULT '',
    ca_fingerprint   TEXT NOT NULL DEFAULT '',
    link_cert        TEXT NOT NULL DEFAULT '', -- PEM
    web_cert_expires timestamptz,
    probes           jsonb NOT NULL DEFAULT '[]',
    links            jsonb NOT NULL DEFAULT '[]'
);

-- +goose Down
DROP TABLE node_health;
