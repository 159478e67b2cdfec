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

  constructor(db: Db) {
    this.db = db;
    this.users = new UserStore(db);
    this.apiKeys = new ApiKeyStore(db);
    this.sessions = new SessionStore(db);
    this.sandboxes = new SandboxStore(db);
    this.audit = new AuditStore(db);
    this.workspaces = new WorkspaceStore(db);
    this.crashes = new CrashStore(db);
    this.ai = new AiStore(db);
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
