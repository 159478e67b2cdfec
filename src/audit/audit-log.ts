import type { Logger } from '../logger.ts';
import type { AuditOutcome } from '../store/audit.ts';
import type { Store } from '../store/store.ts';

export interface AuditEntry {
  actor: string | null;
  ip: string | null;
  action: string;
  target?: string | null;
  outcome?: AuditOutcome;
  details?: Record<string, unknown>;
}

/**
 * Who did what, when, from where: one row in the store and one structured log
 * line per event. Never holds a secret (no passwords, keys or tokens).
 */
export class AuditLog {
  private readonly store: Store;
  private readonly log: Logger;

  constructor(store: Store, log: Logger) {
    this.store = store;
    this.log = log;
  }

  record(e: AuditEntry): void {
    const event = {
      at: new Date().toISOString(), actor: e.actor, ip: e.ip, action: e.action,
      target: e.target ?? null, outcome: e.outcome ?? 'ok', details: e.details ?? {},
    };
    // The log line below carries the whole event, so a row the store cannot take (a full disk) is not lost;
    // and an action that already happened is not answered as failed for want of its audit row.
    const stored = this.store.bestEffort('writing the audit log', () => this.store.audit.append(event));
    if (stored) this.log.info({ audit: event }, `audit ${event.action} ${event.outcome}`);
    else this.log.error({ audit: event, stored: false }, `audit ${event.action} ${event.outcome} (NOT in the store's audit log: it could not be written; this line is the record)`);
  }
}
