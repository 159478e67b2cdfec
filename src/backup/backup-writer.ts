import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../logger.ts';
import type { Store } from '../store/store.ts';
import type { User } from '../store/users.ts';
import type { WorkspaceRecord } from '../store/workspaces.ts';
import { workspaceDirs } from '../workspaces/workspace-dirs.ts';
import { copyTree, packDir } from './archive-tools.ts';
import { DATABASE_FILE, MANIFEST_FILE, type BackupManifest } from './manifest.ts';

export interface BackupRequest {
  store: Store;
  dataDir: string;
  log: Logger;
  /** Whose workspaces: one user's, or (null) everyone's plus the database. */
  user: User | null;
  workspaces: { record: WorkspaceRecord; owner: User }[];
  /** Freezes the sandboxes using a workspace while it is copied. */
  pauseWorkspace: (workspaceId: number) => Promise<{ paused: boolean; resume: () => Promise<void> }>;
}

/** Where backups are staged and packed before they are handed out. */
export function backupsDir(dataDir: string): string {
  return join(dataDir, 'backups');
}

/**
 * Writes a backup archive (tar.gz, mode 0600) and returns its path: each
 * workspace copied while the sandboxes using it are frozen (one consistent
 * instant per workspace, and each sandbox paused only for its own copy), the
 * database through SQLite's online backup API, and a manifest.
 */
export async function writeBackup(req: BackupRequest): Promise<{ file: string; manifest: BackupManifest }> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const root = backupsDir(req.dataDir);
  const staging = join(root, `.staging-${stamp}-${process.pid}`);
  mkdirSync(staging, { recursive: true, mode: 0o700 });
  const file = join(root, `codeyard-${req.user ? `${req.user.username}-` : ''}${stamp}.tar.gz`);
  const started = Date.now();
  try {
    const manifest: BackupManifest = {
      format: 'codeyard-backup', version: 1, createdAt: new Date().toISOString(),
      scope: req.user ? 'user' : 'full', user: req.user?.username ?? null, workspaces: [],
    };
    if (!req.user) await req.store.db.backup(join(staging, DATABASE_FILE));
    for (const { record, owner } of req.workspaces) {
      const path = join('users', owner.username, record.name);
      const source = workspaceDirs(req.dataDir, { owner: owner.username, name: record.name }).base;
      mkdirSync(join(staging, 'users', owner.username), { recursive: true, mode: 0o700 });
      const { paused, resume } = await req.pauseWorkspace(record.id);
      const t0 = Date.now();
      try {
        await copyTree(source, join(staging, path));
      } finally {
        await resume();
      }
      req.log.info({ workspace: path, frozenMs: Date.now() - t0, consistent: paused }, 'workspace copied for backup');
      manifest.workspaces.push({ owner: owner.username, name: record.name, createdAt: record.createdAt, path, consistent: paused });
    }
    writeFileSync(join(staging, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
    writeFileSync(file, '', { mode: 0o600 }); // the archive holds password hashes and everyone's files
    await packDir(staging, file);
    req.log.info({ file, workspaces: manifest.workspaces.length, ms: Date.now() - started }, 'backup written');
    return { file, manifest };
  } catch (err) {
    rmSync(file, { force: true });
    throw err;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
