-- Host agents joining the cluster, PostgreSQL dialect (the SQLite dialect
-- has the same in sqlite/migrations/00009_links.sql): join tokens, and
-- each host's link identity, revocation and last report. Expand-only, so
-- that a node of the previous release keeps working during a rolling
-- upgrade (columns with a constant default are added without rewriting
-- the table). Times are timestamptz (microseconds); booleans are boolean.
-- Versions 2 to 8 are River's migrations (sqlstore.riverSteps).

-- +goose Up
CREATE TABLE join_tokens (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    note       TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL,
    created    timestamptz NOT NULL,
    expires    timestamptz NOT NULL,
    max_uses   INTEGER NOT NULL,
    uses       INTEGER NOT NULL DEFAULT 0,
    revoked    boolean NOT NULL DEFAULT FALSE
);

ALTER TABLE hosts
    ADD COLUMN cert_serial      TEXT NOT NULL DEFAULT '',
    ADD COLUMN revoked          boolean NOT NULL DEFAULT FALSE,
    ADD COLUMN agent_version    TEXT NOT NULL DEFAULT '',
    ADD COLUMN address          TEXT NOT NULL DEFAULT '',
    ADD COLUMN cpu_percent      DOUBLE PRECISION NOT NULL DEFAULT 0,
    ADD COLUMN mem_total        BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN mem_used         BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN desktops_running INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE hosts
    DROP COLUMN desktops_running,
    DROP COLUMN mem_used,
    DROP COLUMN mem_total,
    DROP COLUMN cpu_percent,
    DROP COLUMN address,
    DROP COLUMN agent_version,
    DROP COLUMN revoked,
    DROP COLUMN cert_serial;
DROP TABLE join_tokens;
