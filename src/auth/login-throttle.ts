// Login back-off, in memory, over keys the caller chooses (a username, an IP, the
// pair). A few failures in a window are free; after that every failure doubles
// the wait before the next attempt is even looked at, up to the end of the
// window. Waiting out the window clears it.

export interface ThrottleOptions {
  windowMs: number;
  /** Failures allowed in a window before back-off starts (a key may get its own). */
  freeFailures: number;
  /** First back-off; doubles with each further failure. */
  baseDelayMs: number;
}

interface Entry {
  failures: number;
  windowStart: number;
  blockedUntil: number;
  /** Whether a refusal in this window was already reported (the audit log gets one, not thousands). */
  reported: boolean;
}

/** Hard cap on tracked keys; past it the oldest are forgotten first. */
const MAX_ENTRIES = 50_000;
const PRUNE_EVERY_MS = 10_000;

export class LoginThrottle {
  private readonly opts: ThrottleOptions;
  private readonly entries = new Map<string, Entry>();
  private lastPrune = 0;

  constructor(opts: ThrottleOptions) {
    this.opts = opts;
  }

  /** Milliseconds until every key may try again; 0 when all may. */
  retryAfterMs(keys: string[], now = Date.now()): number {
    let wait = 0;
    for (const key of keys) {
      const e = this.current(key, now);
      if (e && e.blockedUntil > now) wait = Math.max(wait, e.blockedUntil - now);
    }
    return wait;
  }

  /** True the first time in a window that any of these blocked keys is refused. */
  firstRefusal(keys: string[], now = Date.now()): boolean {
    let first = false;
    for (const key of keys) {
      const e = this.current(key, now);
      if (e && e.blockedUntil > now && !e.reported) { e.reported = true; first = true; }
    }
    return first;
  }

  fail(key: string, freeFailures = this.opts.freeFailures, now = Date.now()): void {
    this.prune(now);
    const e = this.current(key, now) ?? { failures: 0, windowStart: now, blockedUntil: 0, reported: false };
    e.failures++;
    this.block(e, freeFailures, now);
    this.entries.delete(key); // re-insert: Map order is then least recently failed first
    this.entries.set(key, e);
  }

  /** Takes back one failure counted ahead of time. */
  refund(key: string, freeFailures = this.opts.freeFailures, now = Date.now()): void {
    const e = this.current(key, now);
    if (!e) return;
    e.failures = Math.max(0, e.failures - 1);
    if (e.failures <= freeFailures) e.blockedUntil = 0; else this.block(e, freeFailures, now);
  }

  succeed(keys: string[]): void {
    for (const key of keys) this.entries.delete(key);
  }

  private block(e: Entry, freeFailures: number, now: number): void {
    const over = e.failures - freeFailures;
    if (over <= 0) return;
    const delay = Math.min(this.opts.baseDelayMs * 2 ** (over - 1), e.windowStart + this.opts.windowMs - now);
    e.blockedUntil = now + Math.max(0, delay);
  }

  private current(key: string, now: number): Entry | undefined {
    const e = this.entries.get(key);
    if (e && now - e.windowStart >= this.opts.windowMs) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  private prune(now: number): void {
    if (now - this.lastPrune < PRUNE_EVERY_MS && this.entries.size < MAX_ENTRIES) return;
    this.lastPrune = now;
    for (const [key, e] of this.entries) if (now - e.windowStart >= this.opts.windowMs) this.entries.delete(key);
    for (const key of this.entries.keys()) {
      if (this.entries.size < MAX_ENTRIES) break;
      this.entries.delete(key);
    }
  }
}
