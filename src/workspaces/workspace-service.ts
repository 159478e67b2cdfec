import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../logger.ts';
import type { Store } from '../store/store.ts';
import type { User } from '../store/users.ts';
import type { WorkspaceRecord } from '../store/workspaces.ts';
import { ConflictError, ForbiddenError, InvalidInputError, NotFoundError } from '../errors.ts';
import { userDir, workspaceDirs } from './workspace-dirs.ts';
import type { VolumeUsage, WorkspaceVolume } from './workspace-volume.ts';

/** Letters, digits, `.`, `_`, `-`; starts with a letter or digit (so never `.` or `..`): a safe directory name. */
export const WORKSPACE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const WORKSPACE_NAME_RULE = '1-64 letters, digits, ".", "_" or "-", starting with a letter or digit';

export interface WorkspaceView {
  name: string;
  owner: string;
  createdAt: string;
  /** Sandboxes (any state) that mount it: while there are any it cannot be deleted. */
  sandboxes: string[];
  /** Its size against its limit, where workspaces have hard limits (storage.workspaceImageMB). */
  usage?: VolumeUsage | null;
}

/**
 * Persistent workspaces: a user's project files and home (settings, extensions,
 * shell history) in `<dataDir>/users/<user>/<name>/{workspace,config}`, kept
 * until the user deletes them, whatever happens to the sandboxes that mount them.
 */
export class WorkspaceService {
  private readonly store: Store;
  private readonly dataDir: string;
  private readonly log: Logger;
  /** Hard size limits, when the workspaces have a filesystem of their own; absent: none. */
  private readonly volume?: { fs: WorkspaceVolume; workspaceMB: number | null; throwawayMB: number | null };

  constructor(opts: { store: Store; dataDir: string; log: Logger; volume?: { fs: WorkspaceVolume; workspaceMB: number | null; throwawayMB: number | null } }) {
    this.store = opts.store;
    this.dataDir = opts.dataDir;
    this.log = opts.log;
    this.volume = opts.volume?.fs.enabled ? opts.volume : undefined;
  }

  /** The views with what each holds against its limit (only where limits are hard). */
  async withUsage(views: WorkspaceView[]): Promise<WorkspaceView[]> {
    if (!this.volume) return views;
    return Promise.all(views.map(async (v) => ({ ...v, usage: await this.volume!.fs.usage(workspaceDirs(this.dataDir, { owner: v.owner, name: v.name }).base) })));
  }

  /** A throwaway sandbox's home and workspace, on the workspaces' filesystem with a limit of their own (a no-op without one). */
  prepareThrowaway(sandboxID: string): void {
    if (!this.volume) return;
    const dir = this.volume.fs.throwawayDir(sandboxID);
    if (!existsSync(dir)) this.volume.fs.create(dir, this.volume.throwawayMB);
  }

  removeThrowaway(sandboxID: string): void {
    this.volume?.fs.remove(this.volume.fs.throwawayDir(sandboxID));
  }

  /** What a throwaway sandbox's workspace holds against its limit. */
  throwawayUsage(sandboxID: string): Promise<VolumeUsage | null> {
    return this.volume ? this.volume.fs.usage(this.volume.fs.throwawayDir(sandboxID)) : Promise.resolve(null);
  }

  list(owner: User): WorkspaceView[] {
    return this.store.workspaces.list(owner.id).map((w) => this.view(w, owner));
  }

  /** Every user's workspaces (for admins and backups). */
  listAll(): { record: WorkspaceRecord; owner: User }[] {
    return this.store.workspaces.list().flatMap((record) => {
      const owner = this.store.users.byId(record.ownerId);
      return owner ? [{ record, owner }] : [];
    });
  }

  get(owner: User, name: string): WorkspaceView {
    return this.view(this.mustGet(owner, name), owner);
  }

  create(owner: User, name: string): WorkspaceView {
    checkName(name, 'name');
    const clash = this.sameNameIgnoringCase(owner, name);
    if (clash) throw new ConflictError(`workspace ${clash} already exists for ${owner.username}${clash === name ? '' : ` (names differ only in case: both would be ${name.toLowerCase()}--${owner.username}.<domain>)`}`);
    return this.view(this.insert(owner, name), owner);
  }

  /** An existing workspace whose name equals `name` but for case: subdomains are lowercase, so two such names would share one. */
  private sameNameIgnoringCase(owner: User, name: string): string | undefined {
    return this.store.workspaces.list(owner.id).find((w) => w.name.toLowerCase() === name.toLowerCase())?.name;
  }

  /** The named workspace, created on first use (so `default` needs no set-up). */
  ensure(owner: User, name: string): WorkspaceRecord {
    checkName(name, 'workspace');
    const found = this.store.workspaces.byName(owner.id, name);
    if (found) return found;
    const clash = this.sameNameIgnoringCase(owner, name);
    if (clash) throw new ConflictError(`workspace: ${owner.username} has a workspace named ${clash}; names may not differ only in case (use ${clash})`);
    return this.insert(owner, name);
  }

  /** Renames it, on disk too; a running sandbox keeps its files (the mount follows the directory). */
  rename(owner: User, name: string, newName: string): WorkspaceView {
    checkName(newName, 'name');
    const record = this.mustGet(owner, name);
    if (newName === name) return this.view(record, owner);
    const clash = this.sameNameIgnoringCase(owner, newName);
    if (clash && clash !== name) throw new ConflictError(`name: workspace ${clash} already exists for ${owner.username}${clash === newName ? '' : ' (names may differ only in more than case)'}; pick another name`);
    const from = workspaceDirs(this.dataDir, { owner: owner.username, name }).base;
    const to = workspaceDirs(this.dataDir, { owner: owner.username, name: newName }).base;
    if (existsSync(to)) throw new ConflictError(`name: ${to} already exists on disk (left over from an earlier workspace?); move it away or pick another name`);
    if (existsSync(from)) renameSync(from, to);
    const renamed = this.store.workspaces.rename(record.id, newName)!;
    this.log.info({ owner: owner.username, from: name, to: newName }, 'workspace renamed');
    return this.view(renamed, owner);
  }

  /** Deletes it and every file in it; only when no sandbox uses it, and only with `confirm` equal to its name. */
  delete(owner: User, name: string, confirm: string | undefined): void {
    const record = this.mustGet(owner, name);
    if (confirm !== name) {
      throw new InvalidInputError(`confirm: deleting workspace ${name} deletes all its files; repeat its name to confirm (?confirm=${encodeURIComponent(name)})`);
    }
    const users = this.store.workspaces.usedBy(record.id);
    if (users.length) {
      throw new ConflictError(`workspace ${name} is used by sandbox${users.length > 1 ? 'es' : ''} ${users.join(', ')}: delete ${users.length > 1 ? 'them' : 'it'} first`);
    }
    this.removeFiles(workspaceDirs(this.dataDir, { owner: owner.username, name }).base);
    this.store.workspaces.delete(record.id);
    this.log.info({ owner: owner.username, workspace: name }, 'workspace deleted');
  }

  /** A purged user's workspaces go with them (their sandboxes are deleted first). */
  purgeUser(owner: User): void {
    for (const w of this.store.workspaces.list(owner.id)) this.store.workspaces.delete(w.id);
    this.removeFiles(userDir(this.dataDir, owner.username));
  }

  /** Moves the directory aside first, so a half-finished delete never leaves a half-deleted workspace in place. */
  private removeFiles(dir: string): void {
    if (!existsSync(dir)) return;
    const doomed = join(this.dataDir, 'users', `.deleting-${process.pid}-${Date.now()}`);
    renameSync(dir, doomed);
    if (this.volume) this.volume.fs.remove(doomed);
    rmSync(doomed, { recursive: true, force: true });
  }

  private insert(owner: User, name: string): WorkspaceRecord {
    if (owner.deletedAt) throw new ForbiddenError(`user ${owner.username} is deleted`);
    const dirs = workspaceDirs(this.dataDir, { owner: owner.username, name });
    // With hard limits the workspace is a filesystem subvolume of its own: a write past its limit is EDQUOT in the sandbox.
    if (this.volume && !existsSync(dirs.base)) this.volume.fs.create(dirs.base, this.volume.workspaceMB);
    for (const dir of [dirs.workspace, dirs.config]) mkdirSync(dir, { recursive: true, mode: 0o700 });
    const record = this.store.workspaces.insert(owner.id, name);
    this.log.info({ owner: owner.username, workspace: name }, 'workspace created');
    return record;
  }

  private mustGet(owner: User, name: string): WorkspaceRecord {
    const record = this.store.workspaces.byName(owner.id, name);
    if (!record) throw new NotFoundError(`workspace ${name} not found for ${owner.username}`);
    return record;
  }

  private view(w: WorkspaceRecord, owner: User): WorkspaceView {
    return { name: w.name, owner: owner.username, createdAt: w.createdAt, sandboxes: this.store.workspaces.usedBy(w.id) };
  }
}

function checkName(name: string, field: string): void {
  if (!WORKSPACE_NAME.test(name)) throw new InvalidInputError(`${field}: "${name}" is not a valid workspace name; use ${WORKSPACE_NAME_RULE}`);
}
