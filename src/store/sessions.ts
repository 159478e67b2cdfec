import type { Db } from './db.ts';

export class SessionStore {
  private readonly db: Db;
  // Read on every authenticated request and proxied asset: prepared once.
  private readonly lookup;

  constructor(db: Db) {
    this.db = db;
    this.lookup = db.prepare('SELECT user_id, expires_at FROM sessions WHERE token_hash = ?');
  }

  create(tokenHash: string, userId: number, expiresAt: Date): void {
    this.db.prepare('INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)')
      .run(tokenHash, userId, new Date().toISOString(), expiresAt.toISOString());
  }

  /** The session's user id if the session exists and has not expired. */
  userIdFor(tokenHash: string, now = new Date()): number | undefined {
    const row = this.lookup.get(tokenHash) as { user_id: number; expires_at: string } | undefined;
    if (!row || row.expires_at <= now.toISOString()) return undefined;
    return row.user_id;
  }

  delete(tokenHash: string): void {
    this.db.prepare('DELETE FROM sessions WHERE token_hash = ?').run(tokenHash);
  }

  deleteExpired(now = new Date()): void {
    this.db.prepare('DELETE FROM sessions WHERE expires_at <= ?').run(now.toISOString());
  }
}
