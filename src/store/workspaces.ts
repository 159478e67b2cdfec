import type { Db } from './db.ts';

export interface WorkspaceRecord {
  id: number;
  ownerId: number;
  name: string;
  createdAt: string;
}

interface Row { id: number; owner_id: number; name: string; created_at: string }

const toRecord = (r: Row): WorkspaceRecord => ({ id: r.id, ownerId: r.owner_id, name: r.name, createdAt: r.created_at });

export class WorkspaceStore {
  private readonly db: Db;

  constructor(db: Db) {
    this.db = db;
  }

  insert(ownerId: number, name: string, createdAt = new Date().toISOString()): WorkspaceRecord {
    const { lastInsertRowid } = this.db.prepare('INSERT INTO workspaces (owner_id, name, created_at) VALUES (?, ?, ?)').run(ownerId, name, createdAt);
    return this.byId(Number(lastInsertRowid))!;
  }

  byId(id: number): WorkspaceRecord | undefined {
    const row = this.db.prepare('SELECT * FROM workspaces WHERE id = ?').get(id) as Row | undefined;
    return row && toRecord(row);
  }

  byName(ownerId: number, name: string): WorkspaceRecord | undefined {
    const row = this.db.prepare('SELECT * FROM workspaces WHERE owner_id = ? AND name = ?').get(ownerId, name) as Row | undefined;
    return row && toRecord(row);
  }

  list(ownerId?: number): WorkspaceRecord[] {
    const rows = ownerId === undefined
      ? this.db.prepare('SELECT * FROM workspaces ORDER BY owner_id, name').all()
      : this.db.prepare('SELECT * FROM workspaces WHERE owner_id = ? ORDER BY name').all(ownerId);
    return (rows as Row[]).map(toRecord);
  }

  rename(id: number, name: string): WorkspaceRecord | undefined {
    this.db.prepare('UPDATE workspaces SET name = ? WHERE id = ?').run(name, id);
    return this.byId(id);
  }

  delete(id: number): void {
    this.db.prepare('DELETE FROM workspaces WHERE id = ?').run(id);
  }

  /** IDs of the sandboxes (any state) that mount the workspace. */
  usedBy(id: number): string[] {
    return (this.db.prepare('SELECT id FROM sandboxes WHERE workspace_id = ? ORDER BY seq').all(id) as { id: string }[]).map((r) => r.id);
  }
}
