import type { Db } from './db.ts';

export type AuditOutcome = 'ok' | 'denied' | 'failed';

export interface AuditEvent {
  id: number;
  at: string;
  /** Username of who acted; null when nobody was authenticated (a failed login names the attempted user in target). */
  actor: string | null;
  ip: string | null;
  action: string;
  target: string | null;
  outcome: AuditOutcome;
  details: Record<string, unknown>;
}

export interface AuditQuery {
  actor?: string;
  action?: string;
  since?: string;
  until?: string;
  limit: number;
}

interface Row { id: number; at: string; actor: string | null; ip: string | null; action: string; target: string | null; outcome: AuditOutcome; details: string }

export class AuditStore {
  private readonly db: Db;
  private readonly insertStmt;

  constructor(db: Db) {
    this.db = db;
    this.insertStmt = db.prepare('INSERT INTO audit (at, actor, ip, action, target, outcome, details) VALUES (?, ?, ?, ?, ?, ?, ?)');
  }

  append(e: Omit<AuditEvent, 'id'>): void {
    this.insertStmt.run(e.at, e.actor, e.ip, e.action, e.target, e.outcome, JSON.stringify(e.details));
  }

  /** Newest first. `action` matches exactly, or a prefix when it ends with `.` (e.g. `sandbox.`). */
  query(q: AuditQuery): AuditEvent[] {
    const where: string[] = [];
    const vals: unknown[] = [];
    // A user's trail: what they did, and what was tried against their account (failed logins).
    if (q.actor) { where.push('(actor = ? OR target = ?)'); vals.push(q.actor, q.actor); }
    if (q.action) {
      if (q.action.endsWith('.')) { where.push('substr(action, 1, ?) = ?'); vals.push(q.action.length, q.action); } else { where.push('action = ?'); vals.push(q.action); }
    }
    if (q.since) { where.push('at >= ?'); vals.push(q.since); }
    if (q.until) { where.push('at < ?'); vals.push(q.until); }
    const sql = `SELECT * FROM audit ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ?`;
    return (this.db.prepare(sql).all(...vals, q.limit) as Row[]).map((r) => ({ ...r, details: JSON.parse(r.details) }));
  }
}
