-- The model proxy: a token per running sandbox (what its opencode sends), and every proxied call.
CREATE TABLE ai_tokens (
  token_hash TEXT PRIMARY KEY,
  sandbox_id TEXT NOT NULL UNIQUE REFERENCES sandboxes(id) ON DELETE CASCADE,
  created_at TEXT NOT NULL
);
CREATE TABLE ai_usage (
  id            INTEGER PRIMARY KEY,
  at            TEXT NOT NULL,
  user_id       INTEGER NOT NULL,
  sandbox_id    TEXT NOT NULL,
  provider      TEXT NOT NULL,
  model         TEXT,
  input_tokens  INTEGER NOT NULL DEFAULT 0,
  output_tokens INTEGER NOT NULL DEFAULT 0,
  latency_ms    INTEGER NOT NULL,
  status        INTEGER NOT NULL
);
CREATE INDEX ai_usage_user_at ON ai_usage(user_id, at);
