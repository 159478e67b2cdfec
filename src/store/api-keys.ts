import type { Db } from './db.ts';

export interface ApiKeyRecord {
  id: string;
  userId: number;
  name: string;
  prefix: string;
  createdAt: string;
  lastUsedAt: string | null;
}

interface Row { id: string; user_id: number; name: string; prefix: string; created_at: string; last_used_at: string | null }
const toRecord = (r: Row): ApiKeyRecord => ({
  id: r.id, userId: r.user_id, name: r.name, prefix: r.prefix, createdAt: r.created_at, lastUsedAt: r.last_used_at,
});

export class ApiKeyStore {
  private readonly db: Db;
  private readonly byHashStmt;

  constructor(db: Db) {
    this.db = db;
    this.byHashStmt = db.prepare('SELECT * FROM api_keys WHERE key_hash = ?');
  }

  create(rec: { id: string; userId: number; name: string; keyHash: string; prefix: string }): ApiKeyRecord {
    const createdAt = new Date().toISOString();
    this.db.prepare('INSERT INTO api_keys (id, user_id, name, key_hash, prefix, created_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(rec.id, rec.userId, rec.name, rec.keyHash, rec.prefix, createdAt);
    return { id: rec.id, userId: rec.userId, name: rec.name, prefix: rec.prefix, createdAt, lastUsedAt: null };
  }

  listForUser(userId: number): ApiKeyRecord[] {
    return (this.db.prepare('SELECT * FROM api_keys WHERE user_id = ? ORDER BY created_at').all(userId) as Row[]).map(toRecord);
  }

  byHash(keyHash: string): ApiKeyRecord | undefined {
    const row = this.byHashStmt.get(keyHash) as Row | undefined;
    return row && toRecord(row);
  }

  touch(id: string): void {
    this.db.prepare('UPDATE api_keys SET last_used_at = ? WHERE id = ?').run(new Date().toISOString(), id);
  }

  delete(id: string, userId: number): boolean {
    return this.db.prepare('DELETE FROM api_keys WHERE id = ? AND user_id = ?').run(id, userId).changes > 0;
  }
}
