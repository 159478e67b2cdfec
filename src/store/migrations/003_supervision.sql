-- Supervision: a `restarting` state, restart counts, the last crash, activity.
-- SQLite cannot change a CHECK constraint in place: rebuild the table.
CREATE TABLE sandboxes_new (
  seq          INTEGER PRIMARY KEY AUTOINCREMENT,
  id           TEXT NOT NULL UNIQUE,
  template_id  TEXT NOT NULL,
  name         TEXT NOT NULL,
  owner_id     INTEGER NOT NULL REFERENCES users(id),
  state        TEXT NOT NULL CHECK (state IN ('starting', 'running', 'restarting', 'stopping', 'stopped', 'error')),
  memory_mb    INTEGER NOT NULL,
  cpu_count    REAL NOT NULL,
  created_at   TEXT NOT NULL,
  end_at       TEXT,
  metadata     TEXT NOT NULL DEFAULT '{}',
  env_vars     TEXT NOT NULL DEFAULT '{}',
  error        TEXT,
  limits       TEXT NOT NULL DEFAULT 'enforced',
  driver_state TEXT NOT NULL DEFAULT '{}',
  started_at   TEXT,
  restarts     INTEGER NOT NULL DEFAULT 0,
  last_crash   TEXT,
  last_activity_at TEXT
);
INSERT INTO sandboxes_new (seq, id, template_id, name, owner_id, state, memory_mb, cpu_count, created_at, end_at, metadata, env_vars, error, limits, driver_state)
  SELECT seq, id, template_id, name, owner_id, state, memory_mb, cpu_count, created_at, end_at, metadata, env_vars, error, limits, driver_state FROM sandboxes;
-- Keep the AUTOINCREMENT high-water mark: seq numbers (host uids) are never reused.
INSERT OR REPLACE INTO sqlite_sequence (name, seq)
  SELECT 'sandboxes_new', max(seq) FROM sqlite_sequence WHERE name IN ('sandboxes', 'sandboxes_new');
DROP TABLE sandboxes;
ALTER TABLE sandboxes_new RENAME TO sandboxes;
CREATE INDEX sandboxes_owner ON sandboxes(owner_id);
