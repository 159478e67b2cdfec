import type { Db } from './db.ts';

export type Role = 'admin' | 'user';

export interface User {
  id: number;
  username: string;
  role: Role;
  disabled: boolean;
  createdAt: string;
}

interface UserRow {
  id: number;
  username: string;
  password_hash: string;
  role: Role;
  disabled: number;
  created_at: string;
}

const toUser = (r: UserRow): User => ({
  id: r.id, username: r.username, role: r.role, disabled: r.disabled === 1, createdAt: r.created_at,
});

export class UserStore {
  private readonly db: Db;
  private readonly byIdStmt;

  constructor(db: Db) {
    this.db = db;
    this.byIdStmt = db.prepare('SELECT * FROM users WHERE id = ?');
  }

  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM users').get() as { n: number }).n;
  }

  create(username: string, passwordHash: string, role: Role): User {
    const createdAt = new Date().toISOString();
    const info = this.db
      .prepare('INSERT INTO users (username, password_hash, role, created_at) VALUES (?, ?, ?, ?)')
      .run(username, passwordHash, role, createdAt);
    return { id: Number(info.lastInsertRowid), username, role, disabled: false, createdAt };
  }

  byId(id: number): User | undefined {
    const row = this.byIdStmt.get(id) as UserRow | undefined;
    return row && toUser(row);
  }

  /** The user and its password hash, for login only. */
  credentials(username: string): { user: User; passwordHash: string } | undefined {
    const row = this.db.prepare('SELECT * FROM users WHERE username = ?').get(username) as UserRow | undefined;
    return row && { user: toUser(row), passwordHash: row.password_hash };
  }
}
