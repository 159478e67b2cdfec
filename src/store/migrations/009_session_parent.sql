-- A subdomain's session hangs off the base-domain session that handed it over:
-- logging out there ends it too.
ALTER TABLE sessions ADD COLUMN parent_hash TEXT;
CREATE INDEX sessions_parent ON sessions(parent_hash);
