-- The schema's compatible floor, PostgreSQL dialect (the SQLite dialect
-- has the same in sqlite/migrations/00012_schema_compat.sql): the oldest
-- schema version whose code may still run on this database. Expand
-- migrations leave it; a contract migration (marked `-- lobby:contract
-- floor=N`) raises it before it runs (sqlstore.MigrateTo), so that nodes
-- of older releases see it at their next heartbeat and go to maintenance
-- mode, and a binary that knows less than the floor refuses to start.
-- One row. Expand-only.

-- +goose Up
CREATE TABLE schema_compat (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    floor_version BIGINT NOT NULL
);
INSERT INTO schema_compat (id, floor_version) VALUES (1, 0);

-- +goose Down
DROP TABLE schema_compat;
