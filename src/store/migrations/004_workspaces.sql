-- Persistent workspaces: a user's files and VS Code state, outliving any sandbox.
CREATE TABLE workspaces (
  id         INTEGER PRIMARY KEY,
  owner_id   INTEGER NOT NULL REFERENCES users(id),
  name       TEXT NOT NULL,
  created_at TEXT NOT NULL,
  UNIQUE (owner_id, name)
);
-- NULL: the sandbox has a throwaway workspace, deleted with it.
ALTER TABLE sandboxes ADD COLUMN workspace_id INTEGER REFERENCES workspaces(id);
CREATE INDEX sandboxes_workspace ON sandboxes(workspace_id);
