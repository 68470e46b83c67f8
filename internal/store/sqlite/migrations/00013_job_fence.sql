-- A fence against late job completions, SQLite dialect (the PostgreSQL
-- dialect has the same in postgres/migrations/00013_job_fence.sql, with
-- the reasons). An update of river_job that brings a token
-- (metadata lobby_attempt, "attempt@client") other than the current
-- attempt's of a running job is ignored. river_job's metadata and
-- attempted_by are JSONB blobs here, which json_extract reads.

-- +goose Up
-- +goose StatementBegin
CREATE TRIGGER lobby_river_job_fence BEFORE UPDATE ON river_job
FOR EACH ROW
WHEN json_extract(NEW.metadata, '$.lobby_attempt') IS NOT json_extract(OLD.metadata, '$.lobby_attempt')
 AND (OLD.state <> 'running'
      OR json_extract(NEW.metadata, '$.lobby_attempt') IS NOT
         (OLD.attempt || '@' || coalesce(json_extract(OLD.attempted_by, '$[#-1]'), '')))
BEGIN
    SELECT RAISE(IGNORE);
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER lobby_river_job_fence;
