-- Accounts: per-user limits, soft deletion (workspaces kept unless purged).
ALTER TABLE users ADD COLUMN max_sandboxes INTEGER;
ALTER TABLE users ADD COLUMN max_memory_mb INTEGER;
ALTER TABLE users ADD COLUMN max_cpu REAL;
ALTER TABLE users ADD COLUMN deleted_at TEXT;

-- Sessions: idle expiry, and sessions scoped to one sandbox (from an IDE link).
ALTER TABLE sessions ADD COLUMN last_seen_at TEXT;
ALTER TABLE sessions ADD COLUMN sandbox_id TEXT;
UPDATE sessions SET last_seen_at = created_at;
CREATE INDEX sessions_sandbox ON sessions(sandbox_id);

-- IDE links already redeemed, kept until they would have expired anyway.
CREATE TABLE redeemed_tokens (
  jti        TEXT PRIMARY KEY,
  expires_at TEXT NOT NULL
);

CREATE TABLE audit (
  id         INTEGER PRIMARY KEY,
  at         TEXT NOT NULL,
  actor      TEXT,
  ip         TEXT,
  action     TEXT NOT NULL,
  target     TEXT,
  outcome    TEXT NOT NULL CHECK (outcome IN ('ok', 'denied', 'failed')),
  details    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_at ON audit(at);
CREATE INDEX audit_actor ON audit(actor, at);
CREATE INDEX audit_action ON audit(action, at);
