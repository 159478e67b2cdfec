-- A session made for one subdomain (<user>.<baseDomain>, <port>-<id>.<baseDomain>) by a login
-- hand-off: its cookie is that host's alone, and the session is valid there only.
ALTER TABLE sessions ADD COLUMN host TEXT;
