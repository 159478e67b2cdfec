// Login back-off, per username and per client IP, in memory. A few failures in
// a window are free; after that every failure doubles the wait before the next
// attempt is even looked at, up to the end of the window. Waiting out the
// window clears it.

export interface ThrottleOptions {
  windowMs: number;
  /** Failures allowed in a window before back-off starts. */
  freeFailures: number;
  /** First back-off; doubles with each further failure. */
  baseDelayMs: number;
}

interface Entry {
  failures: number;
  windowStart: number;
  blockedUntil: number;
}

const MAX_ENTRIES = 50_000;

export class LoginThrottle {
  private readonly opts: ThrottleOptions;
  private readonly entries = new Map<string, Entry>();

  constructor(opts: ThrottleOptions) {
    this.opts = opts;
  }

  /** Milliseconds until any of the keys may try again; 0 when all may. */
  retryAfterMs(keys: string[], now = Date.now()): number {
    let wait = 0;
    for (const key of keys) {
      const e = this.current(key, now);
      if (e && e.blockedUntil > now) wait = Math.max(wait, e.blockedUntil - now);
    }
    return wait;
  }

  fail(keys: string[], now = Date.now(), freeFailures = this.opts.freeFailures): void {
    if (this.entries.size > MAX_ENTRIES) this.prune(now);
    for (const key of keys) {
      const e = this.current(key, now) ?? { failures: 0, windowStart: now, blockedUntil: 0 };
      e.failures++;
      const over = e.failures - freeFailures;
      if (over > 0) {
        const delay = Math.min(this.opts.baseDelayMs * 2 ** (over - 1), e.windowStart + this.opts.windowMs - now);
        e.blockedUntil = now + Math.max(0, delay);
      }
      this.entries.set(key, e);
    }
  }

  succeed(keys: string[]): void {
    for (const key of keys) this.entries.delete(key);
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
    for (const [key, e] of this.entries) if (now - e.windowStart >= this.opts.windowMs) this.entries.delete(key);
  }
}
