-- Every crash of a sandbox (the newest few), not only the last one.
CREATE TABLE sandbox_crashes (
  id             INTEGER PRIMARY KEY,
  sandbox_id     TEXT NOT NULL REFERENCES sandboxes(id) ON DELETE CASCADE,
  at             TEXT NOT NULL,
  exit_code      INTEGER,
  signal         TEXT,
  uptime_seconds INTEGER,
  classification TEXT NOT NULL,
  log_tail       TEXT NOT NULL
);
CREATE INDEX sandbox_crashes_sandbox ON sandbox_crashes(sandbox_id, id);
