import { execFileSync } from 'node:child_process';
import { copyFileSync, chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { SYSTEM_PATH } from '../toolchain/system-commands.ts';
import { join } from 'node:path';
import type { Logger } from '../logger.ts';
import { Store } from '../store/store.ts';
import { usernameSchema } from '../api/user-routes.ts';
import { WORKSPACE_NAME } from '../workspaces/workspace-service.ts';
import { workspaceDirs } from '../workspaces/workspace-dirs.ts';
import { unpackInto } from './archive-tools.ts';
import { DATABASE_FILE, MANIFEST_FILE, parseManifest } from './manifest.ts';
import { backupsDir } from './backup-writer.ts';

export interface RestoreSummary {
  database: boolean;
  workspaces: string[];
  /** Where what the restore replaced was moved (nothing is deleted); null if nothing was replaced. */
  savedTo: string | null;
}

/**
 * Restores a backup into the data dir; the gateway must be stopped. A full
 * backup brings back the database too; a user backup brings back that user's
 * workspaces (the user must exist). Whatever is replaced is moved aside under
 * <dataDir>/backups/replaced-<time>/, never deleted.
 */
export async function restoreBackup(opts: { dataDir: string; file: string; log: Logger }): Promise<RestoreSummary> {
  if (!existsSync(opts.file)) throw new Error(`${opts.file}: no such file`);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const staging = join(backupsDir(opts.dataDir), `.restoring-${stamp}-${process.pid}`);
  const saved = join(backupsDir(opts.dataDir), `replaced-${stamp}`);
  let savedAnything = false;
  const setAside = (path: string, as: string) => {
    mkdirSync(join(saved, as, '..'), { recursive: true, mode: 0o700 });
    moveDir(path, join(saved, as));
    savedAnything = true;
  };
  mkdirSync(staging, { recursive: true, mode: 0o700 });
  try {
    await unpackInto(opts.file, staging);
    if (!existsSync(join(staging, MANIFEST_FILE))) throw new Error(`${opts.file}: not a codeyard backup (no manifest.json)`);
    const manifest = parseManifest(readFileSync(join(staging, MANIFEST_FILE), 'utf8'), opts.file);
    for (const w of manifest.workspaces) {
      // Names become paths: an archive that was tampered with must not write outside the data dir.
      if (!usernameSchema.safeParse(w.owner).success || !WORKSPACE_NAME.test(w.name)) throw new Error(`${opts.file}: bad workspace entry ${w.owner}/${w.name}`);
      if (w.path !== join('users', w.owner, w.name)) throw new Error(`${opts.file}: workspace ${w.owner}/${w.name} is stored at an unexpected path ${w.path}`);
      if (manifest.scope === 'user' && w.owner !== manifest.user) throw new Error(`${opts.file}: a backup of ${manifest.user} holds a workspace of ${w.owner}; refusing to restore it`);
    }

    if (manifest.scope === 'full') {
      if (!existsSync(join(staging, DATABASE_FILE))) throw new Error(`${opts.file}: a full backup without ${DATABASE_FILE}`);
      for (const suffix of ['', '-wal', '-shm']) {
        const current = join(opts.dataDir, DATABASE_FILE + suffix);
        if (existsSync(current)) setAside(current, DATABASE_FILE + suffix);
      }
      copyFileSync(join(staging, DATABASE_FILE), join(opts.dataDir, DATABASE_FILE));
      chmodSync(join(opts.dataDir, DATABASE_FILE), 0o600);
    }

    const store = Store.open(opts.dataDir); // applies migrations to an older backup's database
    try {
      const missing = manifest.workspaces.filter((w) => !store.users.byUsername(w.owner)).map((w) => w.owner);
      if (missing.length) throw new Error(`${opts.file}: user ${[...new Set(missing)].join(', ')} does not exist here; create ${missing.length > 1 ? 'them' : 'it'} first (codeyard user add), then restore again`);
      for (const w of manifest.workspaces) {
        const owner = store.users.byUsername(w.owner)!;
        const target = workspaceDirs(opts.dataDir, { owner: w.owner, name: w.name }).base;
        if (existsSync(target) && readdirSync(target).length > 0) setAside(target, join('users', w.owner, w.name));
        else rmSync(target, { recursive: true, force: true });
        mkdirSync(join(target, '..'), { recursive: true, mode: 0o700 });
        moveDir(join(staging, w.path), target);
        if (!store.workspaces.byName(owner.id, w.name)) store.workspaces.insert(owner.id, w.name, w.createdAt);
        opts.log.info({ workspace: `${w.owner}/${w.name}` }, 'workspace restored');
      }
    } finally {
      store.close();
    }
    return { database: manifest.scope === 'full', workspaces: manifest.workspaces.map((w) => `${w.owner}/${w.name}`), savedTo: savedAnything ? saved : null };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * rename(2), or, across filesystems (workspaces on a filesystem of their own, storage.workspaceImageMB),
 * a copy that keeps owners, modes and links, then the source removed.
 */
function moveDir(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    execFileSync('/bin/cp', ['-a', '--', from, to], { env: { PATH: SYSTEM_PATH }, stdio: ['ignore', 'ignore', 'pipe'] });
    rmSync(from, { recursive: true, force: true });
  }
}
