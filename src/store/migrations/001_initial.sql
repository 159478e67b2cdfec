CREATE TABLE users (
  id            INTEGER PRIMARY KEY,
  username      TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  role          TEXT NOT NULL CHECK (role IN ('admin', 'user')),
  disabled      INTEGER NOT NULL DEFAULT 0,
  created_at    TEXT NOT NULL
);

CREATE TABLE api_keys (
  id           TEXT PRIMARY KEY,
  user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name         TEXT NOT NULL,
  key_hash     TEXT NOT NULL UNIQUE,
  prefix       TEXT NOT NULL,
  created_at   TEXT NOT NULL,
  last_used_at TEXT
);

CREATE TABLE sessions (
  token_hash   TEXT PRIMARY KEY,
  user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at   TEXT NOT NULL,
  expires_at   TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

-- seq gives each sandbox a small stable number (its host uid offset).
CREATE TABLE sandboxes (
  seq          INTEGER PRIMARY KEY AUTOINCREMENT,
  id           TEXT NOT NULL UNIQUE,
  template_id  TEXT NOT NULL,
  name         TEXT NOT NULL,
  owner_id     INTEGER NOT NULL REFERENCES users(id),
  state        TEXT NOT NULL CHECK (state IN ('starting', 'running', 'stopping', 'stopped', 'error')),
  memory_mb    INTEGER NOT NULL,
  cpu_count    REAL NOT NULL,
  created_at   TEXT NOT NULL,
  end_at       TEXT,
  metadata     TEXT NOT NULL DEFAULT '{}',
  env_vars     TEXT NOT NULL DEFAULT '{}',
  error        TEXT,
  limits       TEXT NOT NULL DEFAULT 'enforced',
  driver_state TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX sandboxes_owner ON sandboxes(owner_id);
