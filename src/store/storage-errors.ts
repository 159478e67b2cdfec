// What a store or file write that failed for the disk's sake means, said once: the
// kind of fault (a full disk, a busy store), how much room the data dir's disk has,
// and the typed error an HTTP answer is made of.
import { existsSync, readFileSync, realpathSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { CodeyardError, InsufficientStorageError, StoreBusyError } from '../errors.ts';

export type StoreFault = 'disk_full' | 'busy';

/**
 * Below this much room for the gateway's own writes, an I/O error of the store is taken
 * for a full disk: SQLite says SQLITE_FULL for most writes on ENOSPC, but some (growing
 * its shared-memory index, -shm) come back as SQLITE_IOERR_* without the errno.
 */
const NEARLY_FULL_BYTES = 1024 * 1024;

/** The kind of store or disk fault `err` is, or undefined for anything else. `dir`: the disk to look at for an I/O error. */
export function storeFault(err: unknown, dir?: string): StoreFault | undefined {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 3; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code !== 'string') continue;
    if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT') return 'disk_full';
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return 'busy';
    if (code.startsWith('SQLITE_IOERR') && dir !== undefined) {
      try { if (diskSpace(dir).writableBytes < NEARLY_FULL_BYTES) return 'disk_full'; } catch { /* cannot tell: not ours to map */ }
    }
  }
  return undefined;
}

export interface DiskSpace {
  /** The directory asked about (or its nearest existing parent). */
  dir: string;
  /** Where its filesystem is mounted, and what it is (ext4, tmpfs…); '' when /proc/self/mounts does not say. */
  mount: string;
  fsType: string;
  /** Free for ordinary users (df's Avail): what sandboxes can still fill. */
  freeBytes: number;
  /** Free for this process: root may also use the blocks ext4 keeps back for it. */
  writableBytes: number;
  totalBytes: number;
}

/** How much room the filesystem holding `dir` has. */
export function diskSpace(dir: string): DiskSpace {
  let existing = dir;
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  const s = statfsSync(existing);
  const { mount, fsType } = mountOf(existing);
  const freeBytes = s.bavail * s.bsize;
  return {
    dir: existing, mount, fsType, freeBytes, totalBytes: s.blocks * s.bsize,
    writableBytes: process.getuid?.() === 0 ? s.bfree * s.bsize : freeBytes,
  };
}

/** "/srv/codeyard (ext4 at /srv) has 0 bytes free of 20 GB" */
export function describeDisk(space: DiskSpace): string {
  const where = space.mount && space.mount !== space.dir ? ` (${space.fsType} at ${space.mount})` : space.fsType ? ` (${space.fsType})` : '';
  return `${space.dir}${where} has ${formatBytes(space.freeBytes)} free of ${formatBytes(space.totalBytes)}`;
}

/** What to do about a full data dir's disk, for messages and logs. */
export function freeSpaceAdvice(dataDir: string): string {
  return `free space there: workspaces (${dataDir}/users) are the usual cause (\`du -sh ${dataDir}/users/*/*\`); writes resume by themselves once there is room, no restart needed`;
}

/**
 * The typed error for a store or disk fault (507 for a full disk, naming it and what
 * to do; 503 with Retry-After for a busy store), or undefined when `err` is neither.
 */
export function storageError(err: unknown, dataDir: string | undefined): CodeyardError | undefined {
  const fault = storeFault(err, dataDir);
  if (fault === 'busy') return new StoreBusyError('the store is busy (another write held it for more than 5 s): try again in a second');
  if (fault !== 'disk_full') return undefined;
  if (dataDir === undefined) return new InsufficientStorageError('the disk holding the gateway\'s data dir is full: nothing that needs room can be saved until the operator frees space there');
  let disk: string;
  try { disk = describeDisk(diskSpace(dataDir)); } catch { disk = `${dataDir} (its free space could not be read)`; }
  return new InsufficientStorageError(`the disk holding the gateway's data dir is full: ${disk}. Nothing that needs room can be saved until space is freed; ${freeSpaceAdvice(dataDir)}`);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let unit = 0;
  while (v >= 1024 && unit < units.length - 1) { v /= 1024; unit++; }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[unit]}`;
}

/** The mount whose point is the longest prefix of `dir` (after symlinks), from /proc/self/mounts. */
function mountOf(dir: string): { mount: string; fsType: string } {
  let real = dir;
  try { real = realpathSync(dir); } catch { /* keep it as given */ }
  let best = { mount: '', fsType: '' };
  let text = '';
  try { text = readFileSync('/proc/self/mounts', 'utf8'); } catch { return best; }
  for (const line of text.split('\n')) {
    const [, rawPoint, fsType] = line.split(' ');
    if (!rawPoint || !fsType) continue;
    const point = rawPoint.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
    const inside = point === '/' || real === point || real.startsWith(`${point}/`);
    if (inside && point.length >= best.mount.length) best = { mount: point, fsType };
  }
  return best;
}
