import type { Db } from './db.ts';
import type { CrashRecord } from './sandboxes.ts';

/** How many crashes are kept per sandbox: enough to see a pattern, bounded for a crash loop. */
export const CRASHES_KEPT = 20;

interface Row { at: string; exit_code: number | null; signal: string | null; uptime_seconds: number | null; classification: string; log_tail: string }

export class CrashStore {
  private readonly db: Db;

  constructor(db: Db) {
    this.db = db;
  }

  add(sandboxID: string, c: CrashRecord): void {
    this.db.prepare('INSERT INTO sandbox_crashes (sandbox_id, at, exit_code, signal, uptime_seconds, classification, log_tail) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(sandboxID, c.at, c.exitCode, c.signal, c.uptimeSeconds, c.classification, c.logTail);
    this.db.prepare('DELETE FROM sandbox_crashes WHERE sandbox_id = ? AND id NOT IN (SELECT id FROM sandbox_crashes WHERE sandbox_id = ? ORDER BY id DESC LIMIT ?)')
      .run(sandboxID, sandboxID, CRASHES_KEPT);
  }

  /** Newest first. */
  list(sandboxID: string): CrashRecord[] {
    const rows = this.db.prepare('SELECT * FROM sandbox_crashes WHERE sandbox_id = ? ORDER BY id DESC').all(sandboxID) as Row[];
    return rows.map((r) => ({ at: r.at, exitCode: r.exit_code, signal: r.signal, uptimeSeconds: r.uptime_seconds, classification: r.classification, logTail: r.log_tail }));
  }
}
