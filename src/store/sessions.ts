import type { Db } from './db.ts';

export interface SessionRecord {
  userId: number;
  /** Set for a session made by redeeming an IDE link: it opens that sandbox only. */
  sandboxId: string | null;
  /** Set for a session handed to one subdomain: valid on that host only. */
  host: string | null;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
}

interface Row { user_id: number; sandbox_id: string | null; host: string | null; created_at: string; last_seen_at: string | null; expires_at: string }

export class SessionStore {
  private readonly db: Db;
  // Read on every authenticated request and proxied asset: prepared once.
  private readonly lookupStmt;
  private readonly touchStmt;

  constructor(db: Db) {
    this.db = db;
    this.lookupStmt = db.prepare('SELECT user_id, sandbox_id, host, created_at, last_seen_at, expires_at FROM sessions WHERE token_hash = ?');
    this.touchStmt = db.prepare('UPDATE sessions SET last_seen_at = ? WHERE token_hash = ?');
  }

  create(tokenHash: string, userId: number, expiresAt: Date, scope: { sandboxId?: string; host?: string; parentHash?: string } = {}): void {
    const now = new Date().toISOString();
    this.db.prepare('INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at, sandbox_id, host, parent_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(tokenHash, userId, now, now, expiresAt.toISOString(), scope.sandboxId ?? null, scope.host ?? null, scope.parentHash ?? null);
  }

  get(tokenHash: string): SessionRecord | undefined {
    const row = this.lookupStmt.get(tokenHash) as Row | undefined;
    return row && {
      userId: row.user_id, sandboxId: row.sandbox_id, host: row.host, createdAt: row.created_at,
      lastSeenAt: row.last_seen_at ?? row.created_at, expiresAt: row.expires_at,
    };
  }

  touch(tokenHash: string, at: Date): void {
    this.touchStmt.run(at.toISOString(), tokenHash);
  }

  delete(tokenHash: string): void {
    this.db.prepare('DELETE FROM sessions WHERE token_hash = ?').run(tokenHash);
  }

  /** Deletes the sessions handed over from this one (subdomains'); returns their hashes. */
  deleteChildren(parentHash: string): string[] {
    const rows = this.db.prepare('DELETE FROM sessions WHERE parent_hash = ? RETURNING token_hash').all(parentHash) as { token_hash: string }[];
    return rows.map((r) => r.token_hash);
  }

  /** Ends every session of the user, but the one named (the caller's own, when it stays). */
  deleteForUser(userId: number, keepTokenHash?: string): number {
    return this.db.prepare('DELETE FROM sessions WHERE user_id = ? AND token_hash IS NOT ?').run(userId, keepTokenHash ?? null).changes;
  }

  deleteForSandbox(sandboxId: string): void {
    this.db.prepare('DELETE FROM sessions WHERE sandbox_id = ?').run(sandboxId);
  }

  deleteExpired(now = new Date(), idleCutoff?: Date): void {
    this.db.prepare('DELETE FROM sessions WHERE expires_at <= ?').run(now.toISOString());
    if (idleCutoff) this.db.prepare('DELETE FROM sessions WHERE last_seen_at <= ?').run(idleCutoff.toISOString());
    this.db.prepare('DELETE FROM redeemed_tokens WHERE expires_at <= ?').run(now.toISOString());
  }

  isRedeemed(jti: string): boolean {
    return this.db.prepare('SELECT 1 FROM redeemed_tokens WHERE jti = ?').get(jti) !== undefined;
  }

  /** Records an IDE link's id as used; false if it already was. */
  redeem(jti: string, expiresAt: Date): boolean {
    return this.db.prepare('INSERT OR IGNORE INTO redeemed_tokens (jti, expires_at) VALUES (?, ?)').run(jti, expiresAt.toISOString()).changes === 1;
  }
}
