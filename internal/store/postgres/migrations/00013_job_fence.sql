-- A fence against late job completions, PostgreSQL dialect (the SQLite
-- dialect has the same in sqlite/migrations/00013_job_fence.sql).
--
-- When a node dies its running jobs are put back and run again elsewhere
-- (internal/jobs). A node thought dead that was only slow may still
-- finish its old attempt; River's completion checks only that the job is
-- running, so it would overwrite the new attempt. Each attempt of Lobby's
-- workers records the token "attempt@client" (metadata lobby_attempt)
-- when it finishes; this trigger ignores an update that brings a token
-- other than the current attempt's of a running job. Updates that do not
-- change the token (River's fetch, rescue, retry, cancel; Lobby's
-- takeover) pass. Expand-only: older releases set no token.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION lobby_river_job_fence() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.state <> 'running'
       OR NEW.metadata->>'lobby_attempt' IS DISTINCT FROM
          OLD.attempt::text || '@' || coalesce(OLD.attempted_by[cardinality(OLD.attempted_by)], '') THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER lobby_river_job_fence BEFORE UPDATE ON river_job
    FOR EACH ROW
    WHEN (NEW.metadata->>'lobby_attempt' IS DISTINCT FROM OLD.metadata->>'lobby_attempt')
    EXECUTE FUNCTION lobby_river_job_fence();

-- +goose Down
DROP TRIGGER lobby_river_job_fence ON river_job;
DROP FUNCTION lobby_river_job_fence();
