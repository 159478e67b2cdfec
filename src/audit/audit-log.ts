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
    this.store.audit.append(event);
    this.log.info({ audit: event }, `audit ${event.action} ${event.outcome}`);
  }
}
