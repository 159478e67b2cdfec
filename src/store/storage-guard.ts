// Workspaces live on the data dir's disk, next to the store: a user can fill it. This
// keeps the gateway going when one does: a reserve ("ballast") file given back when a
// store write finds the disk full, a watch that makes the reserve again once there is
// room and tells /readyz when the disk is low, and a log of failures that says each
// kind once a minute instead of once a write.
import { existsSync, rmSync, statSync, unlinkSync, renameSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../logger.ts';
import { describeDisk, diskSpace, formatBytes, freeSpaceAdvice, storeFault, type DiskSpace } from './storage-errors.ts';

export const RESERVE_FILE = '.reserve';
const MIB = 1024 * 1024;
/** How often free space is looked at (the reserve made again, low disk logged). */
const CHECK_INTERVAL_MS = 10_000;
/** A failure of one kind is logged at most this often. */
const REPORT_EVERY_MS = 60_000;

export interface StorageGuardOptions {
  dataDir: string;
  /** Below this, the disk is "low": /readyz answers 503 and the reserve is not made. */
  minFreeMB: number;
  /** The reserve's size; 0: none. */
  reserveMB: number;
  log: Logger;
  checkIntervalMs?: number;
  /** How much room the disk has (tests pass a fake). */
  space?: (dir: string) => DiskSpace;
}

export class StorageGuard {
  readonly reservePath: string;
  private readonly opts: StorageGuardOptions;
  private timer: NodeJS.Timeout | undefined;
  private creating: Promise<boolean> | undefined;
  /** Set by a release (or close): a reserve being written stops and goes. */
  private cancelCreate = false;
  private closed = false;
  private low: boolean | undefined;
  private readonly reported = new Map<string, { at: number; suppressed: number }>();

  constructor(opts: StorageGuardOptions) {
    this.opts = opts;
    this.reservePath = join(opts.dataDir, RESERVE_FILE);
  }

  /** Looks now (making the reserve in the background if it is missing and there is room), then every few seconds. */
  start(): void {
    if (this.opts.reserveMB === 0) rmSync(this.reservePath, { force: true }); // turned off: give its room back
    this.check();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.check(), this.opts.checkIntervalMs ?? CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.creating;
  }

  space(): DiskSpace {
    return (this.opts.space ?? diskSpace)(this.opts.dataDir);
  }

  /**
   * Why the data dir's disk is too full to call the gateway ready, or undefined:
   * `detail` names paths (the log, the operator), `brief` does not (anyone).
   */
  lowSpace(): { detail: string; brief: string } | undefined {
    const space = this.space();
    if (space.freeBytes >= this.opts.minFreeMB * MIB) return undefined;
    return {
      detail: `${describeDisk(space)}, below storage.minFreeMB (${this.opts.minFreeMB} MB): ${freeSpaceAdvice(this.opts.dataDir)}`,
      brief: `the data dir's disk has ${formatBytes(space.freeBytes)} free, below storage.minFreeMB (${this.opts.minFreeMB} MB): the operator must free space there`,
    };
  }

  hasReserve(): boolean {
    return existsSync(this.reservePath);
  }

  /**
   * A store write found the disk full: delete the reserve, loudly, so the write can be
   * tried again. True when there was room to give back.
   */
  releaseReserve(what: string): boolean {
    this.cancelCreate = true;
    return releaseReserve(this.opts.dataDir, this.opts.log, what, this.opts.minFreeMB + this.opts.reserveMB);
  }

  /** Runs `fn`; if it fails for a full disk, gives the reserve back and runs it once more. */
  retryWhenFull<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (storeFault(err, this.opts.dataDir) !== 'disk_full' || !this.releaseReserve(what)) throw err;
      return fn();
    }
  }

  /**
   * Makes the reserve when it is missing and the disk has room for it and minFreeMB on
   * top: written with zeros, so its blocks are really taken (a sparse file would give
   * nothing back). Resolves to whether the reserve is in place; never rejects.
   */
  ensureReserve(): Promise<boolean> {
    this.creating ??= this.createReserve().finally(() => { this.creating = undefined; });
    return this.creating;
  }

  /**
   * A timer's or background write's failure: logged once a minute per kind (what failed,
   * and why: a full disk, a busy store, anything else), with how many were not logged.
   */
  report(what: string, err: unknown): void {
    const fault = storeFault(err, this.opts.dataDir);
    const code = String((err as { code?: unknown })?.code ?? (err as Error)?.name ?? 'error');
    const key = `${what}|${fault ?? code}`;
    const now = Date.now();
    const seen = this.reported.get(key);
    if (seen && now - seen.at < REPORT_EVERY_MS) { seen.suppressed++; return; }
    if (this.reported.size > 1000) this.reported.clear();
    this.reported.set(key, { at: now, suppressed: 0 });
    const fields = { what, code, err: (err as Error)?.message ?? String(err), ...(seen?.suppressed ? { notLoggedSince: seen.suppressed } : {}) };
    if (fault === 'disk_full') {
      let disk = this.opts.dataDir;
      try { disk = describeDisk(this.space()); } catch { /* keep the path */ }
      this.opts.log.error({ ...fields, disk }, `${what} failed: the data dir's disk is full (${disk}); ${freeSpaceAdvice(this.opts.dataDir)} (logged once a minute)`);
    } else if (fault === 'busy') {
      this.opts.log.warn(fields, `${what} failed: the store was busy; it is tried again later (logged once a minute)`);
    } else {
      this.opts.log.error(fields, `${what} failed (logged once a minute)`);
    }
  }

  private check(): void {
    try {
      const space = this.space();
      const minFree = this.opts.minFreeMB * MIB;
      const low = space.freeBytes < minFree;
      if (low !== this.low) {
        if (low) this.opts.log.warn({ disk: describeDisk(space) }, `the data dir's disk is low: ${describeDisk(space)}, below storage.minFreeMB (${this.opts.minFreeMB} MB); /readyz answers 503 until there is room; ${freeSpaceAdvice(this.opts.dataDir)}`);
        else if (this.low !== undefined) this.opts.log.info({ disk: describeDisk(space) }, 'the data dir\'s disk has room again');
        this.low = low;
      }
      if (this.opts.reserveMB > 0 && !this.creating && !this.hasReserve() && space.freeBytes >= this.opts.reserveMB * MIB + minFree) void this.ensureReserve();
    } catch (err) {
      this.report('checking the data dir\'s disk', err);
    }
  }

  private async createReserve(): Promise<boolean> {
    const bytes = this.opts.reserveMB * MIB;
    const partial = `${this.reservePath}.partial`;
    try {
      if (bytes === 0 || this.closed) return false;
      if (existsSync(this.reservePath)) {
        if (statSync(this.reservePath).size === bytes) return true;
        unlinkSync(this.reservePath); // another size (the config changed): made again at the size asked for
      }
      if (this.space().freeBytes < bytes + this.opts.minFreeMB * MIB) return false;
      this.cancelCreate = false;
      const file = await open(partial, 'w', 0o600);
      try {
        const zeros = Buffer.alloc(Math.min(MIB, bytes));
        for (let done = 0; done < bytes; done += zeros.length) {
          if (this.cancelCreate || this.closed) throw new Error('cancelled');
          await file.write(zeros, 0, Math.min(zeros.length, bytes - done));
        }
        await file.sync();
      } finally {
        await file.close();
      }
      if (this.cancelCreate || this.closed) throw new Error('cancelled');
      renameSync(partial, this.reservePath);
      this.opts.log.info({ reserve: this.reservePath, bytes }, `disk reserve in place: ${formatBytes(bytes)} given back if the disk fills, so the gateway can keep recording state`);
      return true;
    } catch (err) {
      rmSync(partial, { force: true });
      if ((err as Error).message !== 'cancelled') this.report('making the disk reserve', err);
      return false;
    }
  }
}

/**
 * Deletes <dataDir>/.reserve, logging loudly what happened and what to do. True when
 * there was room to give back (also a reserve still being written).
 */
export function releaseReserve(dataDir: string, log: Logger, what: string, backAtMB?: number): boolean {
  const path = join(dataDir, RESERVE_FILE);
  let bytes = 0;
  for (const file of [path, `${path}.partial`]) {
    try {
      const size = statSync(file).size;
      unlinkSync(file);
      bytes += size;
    } catch { /* not there */ }
  }
  if (bytes === 0) return false;
  let disk = dataDir;
  try { disk = describeDisk(diskSpace(dataDir)); } catch { /* keep the path */ }
  const advice = freeSpaceAdvice(dataDir);
  log.error({ reserve: path, bytes, disk }, `THE DATA DIR'S DISK IS FULL: ${what} could not be written, so the ${formatBytes(bytes)} reserve (${path}) was deleted to let the gateway keep recording state. ` +
    `${advice[0]!.toUpperCase()}${advice.slice(1)}. The reserve is made again by itself${backAtMB === undefined ? '' : ` once ${backAtMB} MB are free`}`);
  return true;
}

/** `retryWhenFull` before there is a guard (the pid file at start): the reserve is given back and `fn` run once more. */
export function retryAfterReleasingReserve<T>(dataDir: string, log: Logger, what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (storeFault(err, dataDir) !== 'disk_full' || !releaseReserve(dataDir, log, what)) throw err;
    return fn();
  }
}
