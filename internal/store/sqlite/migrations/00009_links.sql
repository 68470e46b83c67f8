-- Host agents joining the cluster, SQLite dialect (the PostgreSQL dialect
-- has the same in postgres/migrations/00009_links.sql): join tokens, and
-- each host's link identity, revocation and last report. Expand-only, so
-- that a node of the previous release keeps working during a rolling
-- upgrade. Times are INTEGER unix microseconds in UTC; booleans are 0/1.
-- Versions 2 to 8 are River's migrations (sqlstore.riverSteps).

-- +goose Up
CREATE TABLE join_tokens (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    note       TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL,
    created    INTEGER NOT NULL,
    expires    INTEGER NOT NULL,
    max_uses   INTEGER NOT NULL,
    uses       INTEGER NOT NULL DEFAULT 0,
    revoked    INTEGER NOT NULL DEFAULT 0
);

ALTER TABLE hosts ADD COLUMN cert_serial TEXT NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN revoked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN agent_version TEXT NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN address TEXT NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN cpu_percent REAL NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN mem_total INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN mem_used INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN desktops_running INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE hosts DROP COLUMN desktops_running;
ALTER TABLE hosts DROP COLUMN mem_used;
ALTER TABLE hosts DROP COLUMN mem_total;
ALTER TABLE hosts DROP COLUMN cpu_percent;
ALTER TABLE hosts DROP COLUMN address;
ALTER TABLE hosts DROP COLUMN agent_version;
ALTER TABLE hosts DROP COLUMN revoked;
ALTER TABLE hosts DROP COLUMN cert_serial;
DROP TABLE join_tokens;
