// Admission control: a sandbox's memoryMB is what its cgroup may take, so the
// sum over sandboxes that hold (or are about to hold) processes is what the
// host has promised. Past a share of the machine's memory, the next create or
// start is refused up front (503) rather than letting the host swap or the
// kernel OOM-kill someone's IDE later. Within that, one user's sandboxes may
// hold only userShare of it (403), so no one user can fill the host and make
// everyone else's start fail with 503.
import { totalmem } from 'node:os';
import { CapacityError, QuotaExceededError } from '../errors.ts';
import type { SandboxRecord } from '../store/sandboxes.ts';
import type { User } from '../store/users.ts';

/** States in which a sandbox holds its memory commitment (restarting: it will be back). */
const COMMITTED_STATES = new Set<SandboxRecord['state']>(['starting', 'running', 'restarting', 'stopping']);

export interface MemoryAdmissionOptions {
  /** Share of the machine's memory that sandboxes' memoryMB may add up to; 0: no limit. */
  memoryShare: number;
  /** The machine's memory in bytes (MemTotal); injectable for tests. */
  totalBytes?: number;
  /** Share of that limit one user's sandboxes may hold together (admins are exempt); absent or 1: no per-user share. */
  userShare?: number;
}

export interface Commitment {
  /** Sandboxes holding memory, and the MiB they hold together. */
  sandboxes: number;
  committedMB: number;
  /** What they may hold together; null when admission is off. */
  limitMB: number | null;
  totalMB: number;
}

export class MemoryAdmission {
  private readonly share: number;
  private readonly userShare: number;
  private readonly totalMB: number;

  constructor(opts: MemoryAdmissionOptions) {
    this.share = opts.memoryShare;
    this.userShare = opts.userShare ?? 1;
    this.totalMB = (opts.totalBytes ?? totalmem()) / 1048576;
  }

  /** What `records` commit (those in committed states), `except` one being started again. */
  commitment(records: readonly SandboxRecord[], except?: string): Commitment {
    const holding = records.filter((r) => r.sandboxID !== except && COMMITTED_STATES.has(r.state));
    return {
      sandboxes: holding.length,
      committedMB: holding.reduce((sum, r) => sum + r.memoryMB, 0),
      limitMB: this.share > 0 ? Math.floor(this.totalMB * this.share) : null,
      totalMB: Math.round(this.totalMB),
    };
  }

  /**
   * Throws CapacityError when `wantsMB` more would pass the limit; first, with an
   * `owner`, QuotaExceededError when it would pass their share of it.
   */
  admit(records: readonly SandboxRecord[], wantsMB: number, except?: string, owner?: Pick<User, 'id' | 'username' | 'role'>): void {
    const c = this.commitment(records, except);
    if (owner && owner.role !== 'admin' && c.limitMB !== null && this.userShare < 1) {
      const theirs = this.commitment(records.filter((r) => r.ownerId === owner.id), except);
      const shareMB = Math.floor(c.limitMB * this.userShare);
      if (theirs.committedMB + wantsMB > shareMB) {
        throw new QuotaExceededError('sandboxes.userShare',
          `${owner.username}'s sandboxes hold ${gib(theirs.committedMB)} and one user may hold ${gib(shareMB)} ` +
          `(sandboxes.userShare ${Number((this.userShare * 100).toPrecision(2))} % of the ${gib(c.limitMB)} this host admits), to leave room for others: ` +
          `a ${gib(wantsMB)} sandbox would pass it; stop one of ${owner.username}'s sandboxes or ask for less memoryMB (an admin can raise sandboxes.userShare)`);
      }
    }
    if (c.limitMB === null || c.committedMB + wantsMB <= c.limitMB) return;
    throw new CapacityError(
      `this host has ${gib(c.committedMB)} of ${gib(this.totalMB)} committed to ${c.sandboxes} running sandbox${c.sandboxes === 1 ? '' : 'es'} ` +
      `(limit ${Number((this.share * 100).toPrecision(2))} %, ${gib(c.limitMB)}): a ${gib(wantsMB)} sandbox would pass it; ` +
      'stop a sandbox, ask for less memoryMB, or raise sandboxes.memoryShare',
    );
  }
}

function gib(mb: number): string {
  return `${(mb / 1024).toFixed(1).replace(/\.0$/, '')} GiB`;
}
