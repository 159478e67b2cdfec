import type { Db } from './db.ts';

export type Role = 'admin' | 'user';

/**
 * One allowance as set for a user: a number, null (no limit), or 'default'
 * (users.defaultLimits in the config; admins have none). In the table: NULL is
 * 'default' (so rows from before defaults existed follow them), -1 is no limit.
 */
export type LimitSetting = number | null | 'default';

/** Per-user allowances as set (src/sandboxes/limits.ts says what is in force). */
export interface UserLimits {
  maxSandboxes: LimitSetting;
  maxMemoryMB: LimitSetting;
  maxCpu: LimitSetting;
}

const NO_LIMIT = -1;
const fromColumn = (v: number | null): LimitSetting => (v === null ? 'default' : v < 0 ? null : v);
const toColumn = (v: LimitSetting): number | null => (v === 'default' ? null : v === null ? NO_LIMIT : v);

export interface User {
  id: number;
  username: string;
  role: Role;
  disabled: boolean;
  limits: UserLimits;
  createdAt: string;
  /** Set when deleted without purge: the account is gone, its workspaces are kept. */
  deletedAt: string | null;
}

interface UserRow {
  id: number;
  username: string;
  password_hash: string;
  role: Role;
  disabled: number;
  created_at: string;
  max_sandboxes: number | null;
  max_memory_mb: number | null;
  max_cpu: number | null;
  deleted_at: string | null;
}

const toUser = (r: UserRow): User => ({
  id: r.id, username: r.username, role: r.role, disabled: r.disabled === 1, createdAt: r.created_at,
  limits: { maxSandboxes: fromColumn(r.max_sandboxes), maxMemoryMB: fromColumn(r.max_memory_mb), maxCpu: fromColumn(r.max_cpu) },
  deletedAt: r.deleted_at,
});

export interface UserPatch {
  role?: Role;
  disabled?: boolean;
  passwordHash?: string;
  limits?: Partial<UserLimits>;
}

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

  /** Keys left out of `limits` are no limit; UserService passes 'default' for the configured defaults. */
  create(username: string, passwordHash: string, role: Role, limits: Partial<UserLimits> = {}): User {
    const info = this.db
      .prepare('INSERT INTO users (username, password_hash, role, created_at, max_sandboxes, max_memory_mb, max_cpu) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(username, passwordHash, role, new Date().toISOString(),
        toColumn(limits.maxSandboxes ?? null), toColumn(limits.maxMemoryMB ?? null), toColumn(limits.maxCpu ?? null));
    return this.byId(Number(info.lastInsertRowid))!;
  }

  byId(id: number): User | undefined {
    const row = this.byIdStmt.get(id) as UserRow | undefined;
    return row && toUser(row);
  }

  byUsername(username: string): User | undefined {
    const row = this.db.prepare('SELECT * FROM users WHERE username = ?').get(username) as UserRow | undefined;
    return row && toUser(row);
  }

  /** Accounts that exist (deleted ones are left out). */
  list(): User[] {
    return (this.db.prepare('SELECT * FROM users WHERE deleted_at IS NULL ORDER BY username').all() as UserRow[]).map(toUser);
  }

  countActiveAdmins(): number {
    return (this.db.prepare("SELECT count(*) AS n FROM users WHERE role = 'admin' AND disabled = 0 AND deleted_at IS NULL").get() as { n: number }).n;
  }

  /** The user and its password hash, for login only. */
  credentials(username: string): { user: User; passwordHash: string } | undefined {
    const row = this.db.prepare('SELECT * FROM users WHERE username = ?').get(username) as UserRow | undefined;
    return row && { user: toUser(row), passwordHash: row.password_hash };
  }

  passwordHash(id: number): string | undefined {
    return (this.db.prepare('SELECT password_hash FROM users WHERE id = ?').get(id) as { password_hash: string } | undefined)?.password_hash;
  }

  update(id: number, patch: UserPatch): User | undefined {
    const sets: string[] = [];
    const vals: unknown[] = [];
    const set = (col: string, v: unknown) => { sets.push(`${col} = ?`); vals.push(v); };
    if (patch.role !== undefined) set('role', patch.role);
    if (patch.disabled !== undefined) set('disabled', patch.disabled ? 1 : 0);
    if (patch.passwordHash !== undefined) set('password_hash', patch.passwordHash);
    if (patch.limits?.maxSandboxes !== undefined) set('max_sandboxes', toColumn(patch.limits.maxSandboxes));
    if (patch.limits?.maxMemoryMB !== undefined) set('max_memory_mb', toColumn(patch.limits.maxMemoryMB));
    if (patch.limits?.maxCpu !== undefined) set('max_cpu', toColumn(patch.limits.maxCpu));
    if (sets.length) this.db.prepare(`UPDATE users SET ${sets.join(', ')} WHERE id = ?`).run(...vals, id);
    return this.byId(id);
  }

  /** The account stops existing for login and lists; its rows stay so its sandboxes keep an owner. */
  markDeleted(id: number): void {
    this.db.prepare('UPDATE users SET deleted_at = ?, disabled = 1 WHERE id = ?').run(new Date().toISOString(), id);
  }

  /** Removes the row for good (keys and sessions go with it); its sandboxes must be gone first. */
  purge(id: number): void {
    this.db.prepare('DELETE FROM users WHERE id = ?').run(id);
  }
}
