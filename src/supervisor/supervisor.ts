/**
 * Watches one running sandbox from inside the gateway: is its main process
 * alive, and does its service answer? Reports death once, then stops watching;
 * what to do about it (restart, back-off, give up) is the lifecycle's call.
 */
export interface SupervisorOptions {
  isAlive: () => Promise<boolean>;
  isHealthy: () => Promise<boolean>;
  onDeath: (reason: 'exited' | 'unhealthy') => void;
  /** How often liveness is checked. */
  checkIntervalMs: number;
  /** How often the health endpoint is probed… */
  healthIntervalMs: number;
  /** …and how many failures in a row mean "hung". */
  healthFailures: number;
}

export class Supervisor {
  private readonly opts: SupervisorOptions;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private failures = 0;
  private lastHealthAt = 0;
  health: { ok: boolean; checkedAt: string | null } = { ok: true, checkedAt: null };

  constructor(opts: SupervisorOptions) {
    this.opts = opts;
  }

  start(): void {
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), this.opts.checkIntervalMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      if (!(await this.opts.isAlive())) return this.die('exited');
      // Healthy: probe every healthIntervalMs. After a failed probe, probe at every tick,
      // so a dead server is confirmed in seconds rather than in healthFailures × interval.
      if (this.failures > 0 || Date.now() - this.lastHealthAt >= this.opts.healthIntervalMs) {
        this.lastHealthAt = Date.now();
        const ok = await this.opts.isHealthy();
        this.health = { ok, checkedAt: new Date().toISOString() };
        this.failures = ok ? 0 : this.failures + 1;
        if (this.failures >= this.opts.healthFailures) return this.die('unhealthy');
      }
    } catch {
      // A failed check is not a verdict; the next tick tries again.
    }
    this.schedule();
  }

  private die(reason: 'exited' | 'unhealthy'): void {
    if (this.stopped) return;
    this.stop();
    this.opts.onDeath(reason);
  }
}
