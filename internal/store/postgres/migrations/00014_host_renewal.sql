-- A host's renewed link certificate waits here until the agent links with
-- it (then it replaces cert_serial): an agent that stops between getting
-- the new certificate and saving it still links with the old one, and the
-- old one stops working once the new one is used. Expand-only.

-- +goose Up
ALTER TABLE hosts ADD COLUMN pending_serial TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE hosts DROP COLUMN pending_serial;
