-- Lobby's schema, PostgreSQL dialect. The SQLite dialect has the same
-- tables, columns and indexes (sqlite/migrations/00001_lobby.sql).
-- Times are timestamptz (microseconds); JSON is jsonb; booleans are
-- boolean.

-- +goose Up
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    group_names   jsonb NOT NULL DEFAULT '[]',
    disabled      boolean NOT NULL DEFAULT FALSE,
    created       timestamptz NOT NULL
);

CREATE TABLE tokens (
    id      TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash    TEXT NOT NULL UNIQUE,
    name    TEXT NOT NULL,
    created timestamptz NOT NULL,
    expires timestamptz,
    revoked boolean NOT NULL DEFAULT FALSE
);
CREATE INDEX tokens_user_id ON tokens (user_id);
CREATE INDEX tokens_expires ON tokens (expires) WHERE expires IS NOT NULL;

CREATE TABLE hosts (
    id        TEXT PRIMARY KEY,
    name      TEXT NOT NULL UNIQUE,
    provider  TEXT NOT NULL,
    state     TEXT NOT NULL,
    site_id   INTEGER NOT NULL DEFAULT 0,
    last_seen timestamptz,
    created   timestamptz NOT NULL
);

CREATE TABLE pools (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    min_size     INTEGER NOT NULL,
    max_size     INTEGER NOT NULL,
    min_free     INTEGER NOT NULL,
    name_pattern TEXT NOT NULL,
    template     TEXT NOT NULL,
    created      timestamptz NOT NULL
);

CREATE TABLE desktops (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    host_id      TEXT NOT NULL REFERENCES hosts (id),
    pool_id      TEXT REFERENCES pools (id),
    power        TEXT NOT NULL,
    console_kind TEXT NOT NULL,
    console_port INTEGER NOT NULL DEFAULT 0,
    assigned_to  TEXT REFERENCES users (id) ON DELETE SET NULL,
    tags         jsonb NOT NULL DEFAULT '[]',
    created      timestamptz NOT NULL,
    updated      timestamptz NOT NULL,
    UNIQUE (host_id, name)
);
-- AssignFree: the first free running desktop of a pool by ID, one index
-- probe however large the pool (ORDER BY id keeps PostgreSQL from choosing
-- a sequential scan for LIMIT 1).
CREATE INDEX desktops_free ON desktops (pool_id, id) WHERE assigned_to IS NULL AND power = 'running';
CREATE INDEX desktops_pool_id ON desktops (pool_id, id);
CREATE INDEX desktops_assigned_to ON desktops (assigned_to) WHERE assigned_to IS NOT NULL;

CREATE TABLE tickets (
    hash       TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    desktop_id TEXT NOT NULL REFERENCES desktops (id) ON DELETE CASCADE,
    created    timestamptz NOT NULL,
    expires    timestamptz NOT NULL,
    used       boolean NOT NULL DEFAULT FALSE,
    used_at    timestamptz
);
CREATE INDEX tickets_user_id ON tickets (user_id);
CREATE INDEX tickets_desktop_id ON tickets (desktop_id);
CREATE INDEX tickets_expires ON tickets (expires);

CREATE TABLE policies (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    pool_ids     jsonb NOT NULL DEFAULT '[]',
    usernames    jsonb NOT NULL DEFAULT '[]',
    group_names  jsonb NOT NULL DEFAULT '[]',
    max_desktops INTEGER NOT NULL,
    mode         TEXT NOT NULL,
    release_plan jsonb NOT NULL DEFAULT '{}',
    power_plan   TEXT NOT NULL,
    priority     INTEGER NOT NULL DEFAULT 0,
    created      timestamptz NOT NULL
);

CREATE TABLE assignments (
    id              TEXT PRIMARY KEY,
    desktop_id      TEXT NOT NULL UNIQUE REFERENCES desktops (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    pool_id         TEXT REFERENCES pools (id),
    policy_id       TEXT REFERENCES policies (id) ON DELETE SET NULL,
    mode            TEXT NOT NULL,
    connected       boolean NOT NULL DEFAULT FALSE,
    disconnected_at timestamptz,
    created         timestamptz NOT NULL
);
CREATE INDEX assignments_user_id ON assignments (user_id);
CREATE INDEX assignments_pool_id ON assignments (pool_id);
CREATE INDEX assignments_policy_id ON assignments (policy_id);
CREATE INDEX assignments_disconnected_at ON assignments (disconnected_at) WHERE disconnected_at IS NOT NULL;

CREATE TABLE audit (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     timestamptz NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL,
    remote TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (at);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- +goose Down
DROP TABLE settings;
DROP TABLE audit;
DROP TABLE assignments;
DROP TABLE policies;
DROP TABLE tickets;
DROP TABLE desktops;
DROP TABLE pools;
DROP TABLE hosts;
DROP TABLE tokens;
DROP TABLE users;
