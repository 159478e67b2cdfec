import { join } from 'node:path';
import { openDb, type Db } from './db.ts';
import { UserStore } from './users.ts';
import { ApiKeyStore } from './api-keys.ts';
import { SessionStore } from './sessions.ts';
import { SandboxStore } from './sandboxes.ts';
import { AuditStore } from './audit.ts';
import { WorkspaceStore } from './workspaces.ts';
import { CrashStore } from './crashes.ts';
import { AiStore } from './ai.ts';
import { guardWrites, type StoreHooks } from './write-guard.ts';

/** All persistent state, in <dataDir>/codeyard.db. The only writer of state. */
export class Store {
  readonly users: UserStore;
  readonly apiKeys: ApiKeyStore;
  readonly sessions: SessionStore;
  readonly sandboxes: SandboxStore;
  readonly audit: AuditStore;
  readonly workspaces: WorkspaceStore;
  readonly crashes: CrashStore;
  readonly ai: AiStore;

  readonly db: Db;
  /** What a full disk and a failed best-effort write do (the gateway sets them: its reserve, its log). */
  readonly hooks: StoreHooks = {};

  constructor(db: Db) {
    this.db = db;
    // Before any statement is prepared: they all get the retry after a full disk.
    guardWrites(db, this.hooks);
    this.users = new UserStore(db);
    this.apiKeys = new ApiKeyStore(db);
    this.sessions = new SessionStore(db);
    this.sandboxes = new SandboxStore(db);
    this.audit = new AuditStore(db);
    this.workspaces = new WorkspaceStore(db);
    this.crashes = new CrashStore(db);
    this.ai = new AiStore(db);
  }

  /**
   * A write nobody waits for (last-seen times, activity, usage): a failure (a full disk)
   * is reported to hooks.onFault, never thrown. Returns whether it was written.
   */
  bestEffort(what: string, write: () => unknown): boolean {
    try {
      write();
      return true;
    } catch (err) {
      this.reportFault(what, err);
      return false;
    }
  }

  /** A timer's or a background task's failure, for the gateway's log (rate-limited there). */
  reportFault(what: string, err: unknown): void {
    try { this.hooks.onFault?.(what, err); } catch { /* reporting must not fail the caller */ }
  }

  static open(dataDir: string): Store {
    return new Store(openDb(join(dataDir, 'codeyard.db')));
  }

  static inMemory(): Store {
    return new Store(openDb(':memory:'));
  }

  close(): void {
    this.db.close();
  }
}
