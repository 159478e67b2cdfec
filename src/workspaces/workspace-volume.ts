import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../logger.ts';
import { SetupError } from '../errors.ts';
import { resolveCommand, SYSTEM_PATH } from '../toolchain/system-commands.ts';

const run = promisify(execFile);
const BTRFS_MAGIC = 0x9123683e;
/** Usage is read with a command: an answer is kept this long. */
const USAGE_CACHE_MS = 5_000;

export interface VolumeUsage { usedMB: number; limitMB: number | null }

/**
 * Hard size limits for workspaces: `<dataDir>/users` is a btrfs filesystem (a
 * loop-mounted image the gateway makes, `storage.workspaceImageMB`), each
 * workspace a subvolume with a qgroup limit. A write past the limit fails in the
 * sandbox with EDQUOT ("Disk quota exceeded"), and all workspaces together can
 * never fill the data dir's own disk, where the database lives. Throwaway
 * workspaces are subvolumes under `users/.throwaway/<sandboxID>`.
 *
 * Why btrfs: ext4 and XFS quotas need kernel quota support that many kernels
 * (this one included) are built without; btrfs qgroups need nothing more than
 * btrfs itself, and subvolumes rename and delete like directories.
 */
export class WorkspaceVolume {
  private readonly dataDir: string;
  private readonly imageMB: number;
  private readonly log: Logger;
  private readonly usageCache = new Map<string, { at: number; usage: VolumeUsage }>();

  constructor(o: { dataDir: string; imageMB: number; log: Logger }) {
    this.dataDir = o.dataDir;
    this.imageMB = o.imageMB;
    this.log = o.log;
  }

  get enabled(): boolean {
    return this.imageMB > 0;
  }

  get usersDir(): string {
    return join(this.dataDir, 'users');
  }

  get image(): string {
    return join(this.dataDir, 'workspaces.btrfs');
  }

  /** Makes (once) and mounts (each boot) the workspaces' filesystem; idempotent. */
  async ensureMounted(): Promise<void> {
    if (!this.enabled) return;
    if (isBtrfs(this.usersDir) && isMountPoint(this.usersDir)) return;
    const btrfs = resolveCommand('btrfs');
    const mkfs = resolveCommand('mkfs.btrfs');
    if (!btrfs || !mkfs) throw new SetupError('storage.workspaceImageMB needs btrfs-progs: run `codeyard setup` as root (or apt-get install btrfs-progs), or set storage.workspaceImageMB: 0');
    if (process.getuid?.() !== 0) throw new SetupError('storage.workspaceImageMB needs a gateway running as root (it mounts the workspaces\' filesystem)');
    mkdirSync(this.usersDir, { recursive: true, mode: 0o700 });
    if (!existsSync(this.image)) {
      if (readdirSync(this.usersDir).length > 0) {
        throw new SetupError(`storage.workspaceImageMB: ${this.usersDir} already holds workspaces, which would be hidden under the new filesystem. ` +
          'Back up (codeyard backup), move them aside, start the gateway, then restore; or set storage.workspaceImageMB: 0');
      }
      const free = statfsSync(this.dataDir);
      const freeMB = Math.floor((Number(free.bavail) * Number(free.bsize)) / 2 ** 20);
      if (this.imageMB > freeMB) throw new SetupError(`storage.workspaceImageMB is ${this.imageMB} but the data dir's disk has ${freeMB} MB free: lower it, or free space`);
      this.log.info({ image: this.image, sizeMB: this.imageMB }, 'making the workspaces\' filesystem (btrfs, one subvolume per workspace)');
      // Allocated up front: a sparse image could promise space the disk no longer has.
      await run('/usr/bin/fallocate', ['-l', `${this.imageMB}M`, this.image], { env: { PATH: SYSTEM_PATH } });
      await run(mkfs, ['-q', '-f', this.image], { env: { PATH: SYSTEM_PATH } });
    }
    await run('/bin/mount', ['-o', 'loop,nosuid,nodev', this.image, this.usersDir], { env: { PATH: SYSTEM_PATH } });
    await run(btrfs, ['quota', 'enable', this.usersDir], { env: { PATH: SYSTEM_PATH } });
    this.log.info({ mount: this.usersDir }, 'workspaces\' filesystem mounted');
  }

  /** A new workspace (or throwaway) directory with its own hard limit (a few milliseconds: synchronous, like mkdir). */
  create(path: string, limitMB: number | null): void {
    const btrfs = resolveCommand('btrfs')!;
    mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 });
    const opts = { env: { PATH: SYSTEM_PATH }, stdio: ['ignore', 'ignore', 'pipe'] as ['ignore', 'ignore', 'pipe'] };
    execFileSync(btrfs, ['subvolume', 'create', path], opts);
    if (limitMB !== null) execFileSync(btrfs, ['qgroup', 'limit', `${limitMB}M`, path], opts);
  }

  /** Removes a subvolume made by create() (or a plain directory). */
  remove(path: string): void {
    if (!existsSync(path)) return;
    const btrfs = resolveCommand('btrfs');
    if (btrfs && isBtrfs(path)) {
      try { execFileSync(btrfs, ['subvolume', 'delete', path], { env: { PATH: SYSTEM_PATH }, stdio: 'ignore' }); } catch { /* a plain directory: rm below */ }
    }
    rmSync(path, { recursive: true, force: true });
  }

  /** Where a throwaway sandbox's home and workspace live on the workspaces' filesystem. */
  throwawayDir(sandboxID: string): string {
    return throwawayDir(this.dataDir, sandboxID);
  }

  /** What a workspace holds against its limit (null: no limit, or not a subvolume of ours). */
  async usage(path: string): Promise<VolumeUsage | null> {
    if (!this.enabled || !existsSync(path)) return null;
    const cached = this.usageCache.get(path);
    if (cached && Date.now() - cached.at < USAGE_CACHE_MS) return cached.usage;
    try {
      const { stdout } = await run(resolveCommand('btrfs')!, ['qgroup', 'show', '-re', '--raw', '-f', path], { env: { PATH: SYSTEM_PATH } });
      // qgroupid rfer excl max_rfer max_excl [path]: the line of the subvolume's own 0/<id> group.
      const row = stdout.split('\n').map((l) => l.trim().split(/\s+/)).find((cols) => /^0\/\d+$/.test(cols[0] ?? ''));
      if (!row) return null;
      const usage = { usedMB: Math.round(Number(row[1]) / 2 ** 20), limitMB: row[3] === 'none' ? null : Math.round(Number(row[3]) / 2 ** 20) };
      this.usageCache.set(path, { at: Date.now(), usage });
      return usage;
    } catch {
      return null;
    }
  }
}

/** `<dataDir>/users/.throwaway/<sandboxID>`: a throwaway workspace that has a size limit of its own. */
export function throwawayDir(dataDir: string, sandboxID: string): string {
  return join(dataDir, 'users', '.throwaway', sandboxID);
}

function isBtrfs(path: string): boolean {
  try { return statfsSync(path).type === BTRFS_MAGIC; } catch { return false; }
}

function isMountPoint(path: string): boolean {
  try { return readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === path); } catch { return false; }
}
