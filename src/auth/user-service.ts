import type { Store } from '../store/store.ts';
import type { Role, User, UserLimits } from '../store/users.ts';
import type { SandboxService } from '../sandboxes/sandbox-service.ts';
import type { LimitsInForce } from '../sandboxes/limits.ts';
import type { WorkspaceService } from '../workspaces/workspace-service.ts';
import type { AuthService } from './auth-service.ts';
import { ConflictError, ForbiddenError, InvalidInputError, NotFoundError } from '../errors.ts';

export interface NewUser {
  username: string;
  password: string;
  role?: Role;
  disabled?: boolean;
  /** Per key: a number, null (no limit) or 'default'; keys left out follow the configured defaults. */
  limits?: Partial<UserLimits>;
}

export interface UserChange {
  role?: Role;
  password?: string;
  disabled?: boolean;
  limits?: Partial<UserLimits>;
}

/** Accounts: who exists, with what role and allowances. Admin-only operations, except changing one's own password. */
export class UserService {
  private readonly store: Store;
  private readonly auth: AuthService;
  private readonly sandboxes: SandboxService;
  private readonly workspaces: WorkspaceService;

  constructor(store: Store, auth: AuthService, sandboxes: SandboxService, workspaces: WorkspaceService) {
    this.store = store;
    this.auth = auth;
    this.sandboxes = sandboxes;
    this.workspaces = workspaces;
  }

  async create(input: NewUser): Promise<User> {
    const existing = this.store.users.byUsername(input.username);
    if (existing) {
      throw new ConflictError(existing.deletedAt
        ? `username ${input.username} belonged to a deleted user whose workspaces are kept: purge it first (DELETE /api/users/${input.username}?purge=true)`
        : `user ${input.username} already exists`);
    }
    let user: User;
    try {
      // A limit left out follows users.defaultLimits (null, given, is no limit).
      const setting = (key: keyof UserLimits) => (input.limits?.[key] === undefined ? 'default' : input.limits[key]);
      user = await this.auth.createUser(input.username, input.password, input.role ?? 'user', {
        maxSandboxes: setting('maxSandboxes'), maxMemoryMB: setting('maxMemoryMB'), maxCpu: setting('maxCpu'),
      });
    } catch (err) {
      // Two requests for the same name at once: the database keeps the second out.
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new ConflictError(`user ${input.username} already exists`);
      throw err;
    }
    return input.disabled ? this.store.users.update(user.id, { disabled: true })! : user;
  }

  list(): User[] {
    return this.store.users.list();
  }

  /** The user's limits in force: their own where set, else users.defaultLimits (admins: none). */
  limitsOf(user: User): LimitsInForce {
    return this.sandboxes.limitsOf(user);
  }

  get(username: string): User {
    const user = this.store.users.byUsername(username);
    if (!user || user.deletedAt) throw new NotFoundError(`user ${username} not found`);
    return user;
  }

  /**
   * Disabling also stops the user's sandboxes (files kept, as with a stop): a
   * disabled account keeps no process running. Enabling starts nothing.
   * `actor`: the admin making the change, on whose authority they are stopped.
   */
  async update(username: string, change: UserChange, actor?: User): Promise<User> {
    const user = this.get(username);
    const losesAdmin = user.role === 'admin' && (change.role === 'user' || change.disabled === true);
    if (losesAdmin) this.keepOneAdmin(user, 'demote or disable');
    const patch: Parameters<Store['users']['update']>[1] = { role: change.role, disabled: change.disabled, limits: change.limits };
    this.store.users.update(user.id, patch);
    this.auth.forgetCached(user.id);
    if (change.password !== undefined) await this.auth.changePassword(user.id, change.password);
    // A disabled user, or one whose password was reset, keeps no session and no open connection.
    if (change.disabled === true || change.password !== undefined) this.auth.endSessions(user.id);
    else if (change.role !== undefined && change.role !== user.role) this.auth.revokeConnections(user.id);
    if (change.disabled === true) await this.stopSandboxes(actor ?? user, user.id);
    return this.get(username);
  }

  /** Changing one's own password needs the old one; it ends every other session. */
  async changeOwnPassword(user: User, oldPassword: string, newPassword: string, currentSessionHash?: string): Promise<void> {
    if (!(await this.auth.checkPasswordThrottled(user.id, oldPassword))) throw new ForbiddenError('oldPassword: does not match your current password');
    if (oldPassword === newPassword) throw new InvalidInputError('newPassword: must differ from the old one');
    await this.auth.changePassword(user.id, newPassword);
    this.auth.endSessions(user.id, currentSessionHash);
  }

  /**
   * Stops the user's sandboxes and ends the account. Without `purge` their
   * workspaces (and sandbox records) are kept, owned by the deleted account;
   * with it, everything goes.
   */
  async delete(actor: User, username: string, purge: boolean): Promise<{ sandboxesStopped: number; sandboxesDeleted: number }> {
    const user = this.store.users.byUsername(username);
    if (!user || (user.deletedAt && !purge)) throw new NotFoundError(`user ${username} not found`);
    if (user.id === actor.id) throw new ConflictError('you cannot delete your own account: ask another admin');
    if (user.role === 'admin' && !user.deletedAt) this.keepOneAdmin(user, 'delete');
    this.store.users.markDeleted(user.id);
    this.auth.endSessions(user.id);
    const owned = this.store.sandboxes.list(user.id);
    let stopped = 0;
    if (purge) for (const s of owned) await this.sandboxes.delete(actor, s.sandboxID);
    else stopped = await this.stopSandboxes(actor, user.id);
    if (purge) {
      this.workspaces.purgeUser(user);
      this.store.users.purge(user.id);
    }
    return { sandboxesStopped: stopped, sandboxesDeleted: purge ? owned.length : 0 };
  }

  /** Stops every sandbox of the user that is not stopped already; returns how many. */
  private async stopSandboxes(actor: User, userId: number): Promise<number> {
    const running = this.store.sandboxes.list(userId).filter((s) => s.state !== 'stopped');
    await Promise.all(running.map((s) => this.sandboxes.stop(actor, s.sandboxID)));
    return running.length;
  }

  private keepOneAdmin(user: User, what: string): void {
    if (this.store.users.countActiveAdmins() <= 1 && !user.disabled) {
      throw new ConflictError(`cannot ${what} ${user.username}: it is the last active admin; make another admin first`);
    }
  }
}
