-- codeyard:foreign-keys-off
-- A user's id becomes their sandboxes' host uid: AUTOINCREMENT, so a purged
-- user's id (and uid, and whatever files still carry it) never goes to the
-- next user created. SQLite cannot add AUTOINCREMENT in place: the table is
-- rebuilt (with foreign keys off, so the tables that point at it keep their rows).
CREATE TABLE users_new (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  username      TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  role          TEXT NOT NULL CHECK (role IN ('admin', 'user')),
  disabled      INTEGER NOT NULL DEFAULT 0,
  created_at    TEXT NOT NULL,
  max_sandboxes INTEGER,
  max_memory_mb INTEGER,
  max_cpu       REAL,
  deleted_at    TEXT
);
INSERT INTO users_new (id, username, password_hash, role, disabled, created_at, max_sandboxes, max_memory_mb, max_cpu, deleted_at)
  SELECT id, username, password_hash, role, disabled, created_at, max_sandboxes, max_memory_mb, max_cpu, deleted_at FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
-- Ids handed out before this migration and since purged cannot be known; sandboxes and workspaces remember their owners' ids.
INSERT INTO sqlite_sequence (name, seq) SELECT 'users', max(
  coalesce((SELECT max(id) FROM users), 0),
  coalesce((SELECT max(owner_id) FROM sandboxes), 0),
  coalesce((SELECT max(owner_id) FROM workspaces), 0)
) WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'users');
UPDATE sqlite_sequence SET seq = max(seq,
  coalesce((SELECT max(id) FROM users), 0),
  coalesce((SELECT max(owner_id) FROM sandboxes), 0),
  coalesce((SELECT max(owner_id) FROM workspaces), 0)
) WHERE name = 'users';
