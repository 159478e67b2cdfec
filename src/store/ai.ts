import { createHash } from 'node:crypto';
import type { Db } from './db.ts';

export interface AiUsageRecord {
  at: string;
  userId: number;
  sandboxID: string;
  provider: string;
  model: string | null;
  inputTokens: number;
  outputTokens: number;
  latencyMs: number;
  status: number;
  /** Made with the user's own key (outside the organisation's budget). */
  ownKey: boolean;
}

export interface UsageFilter { userId?: number; from?: string; to?: string }

/** Calls and tokens of one user with one provider and model. */
export interface UsageGroup { userId: number; provider: string; model: string | null; calls: number; inputTokens: number; outputTokens: number; ownKeyCalls: number }

export interface UsageTotals { calls: number; inputTokens: number; outputTokens: number }

function where(filter: UsageFilter): { sql: string; args: unknown[] } {
  const clauses: string[] = [];
  const args: unknown[] = [];
  if (filter.userId !== undefined) { clauses.push('user_id = ?'); args.push(filter.userId); }
  if (filter.from) { clauses.push('at >= ?'); args.push(filter.from); }
  if (filter.to) { clauses.push('at < ?'); args.push(filter.to); }
  return { sql: clauses.length ? `WHERE ${clauses.join(' AND ')}` : '', args };
}

const hash = (token: string) => createHash('sha256').update(token).digest('hex');

/** Sandbox tokens for the model proxy (stored hashed) and the usage it records. */
export class AiStore {
  private readonly db: Db;

  constructor(db: Db) {
    this.db = db;
  }

  /** The sandbox's token from now on; any earlier one stops working. */
  setToken(sandboxID: string, token: string): void {
    this.db.prepare('INSERT INTO ai_tokens (token_hash, sandbox_id, created_at) VALUES (?, ?, ?) ON CONFLICT(sandbox_id) DO UPDATE SET token_hash = excluded.token_hash, created_at = excluded.created_at')
      .run(hash(token), sandboxID, new Date().toISOString());
  }

  sandboxForToken(token: string): string | undefined {
    return (this.db.prepare('SELECT sandbox_id FROM ai_tokens WHERE token_hash = ?').get(hash(token)) as { sandbox_id: string } | undefined)?.sandbox_id;
  }

  recordUsage(u: AiUsageRecord): void {
    this.db.prepare('INSERT INTO ai_usage (at, user_id, sandbox_id, provider, model, input_tokens, output_tokens, latency_ms, status, own_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(u.at, u.userId, u.sandboxID, u.provider, u.model, u.inputTokens, u.outputTokens, u.latencyMs, u.status, u.ownKey ? 1 : 0);
  }

  /** Tokens ever recorded, per provider (the metrics' totals). */
  tokenTotals(): { provider: string; input: number; output: number }[] {
    return this.db.prepare('SELECT provider, SUM(input_tokens) AS input, SUM(output_tokens) AS output FROM ai_usage GROUP BY provider').all() as { provider: string; input: number; output: number }[];
  }

  /** Tokens (in + out) a user has spent of the organisation's keys since `since`: what counts against the budget. */
  budgetedTokensSince(userId: number, since: string): number {
    return (this.db.prepare('SELECT COALESCE(SUM(input_tokens + output_tokens), 0) AS n FROM ai_usage WHERE user_id = ? AND at >= ? AND own_key = 0').get(userId, since) as { n: number }).n;
  }

  /** Single calls, newest first. */
  usage(filter: UsageFilter & { limit: number }): AiUsageRecord[] {
    const w = where(filter);
    const rows = this.db.prepare(`SELECT * FROM ai_usage ${w.sql} ORDER BY id DESC LIMIT ?`).all(...w.args, filter.limit) as {
      at: string; user_id: number; sandbox_id: string; provider: string; model: string | null; input_tokens: number; output_tokens: number; latency_ms: number; status: number; own_key: number;
    }[];
    return rows.map((r) => ({ at: r.at, userId: r.user_id, sandboxID: r.sandbox_id, provider: r.provider, model: r.model, inputTokens: r.input_tokens, outputTokens: r.output_tokens, latencyMs: r.latency_ms, status: r.status, ownKey: r.own_key === 1 }));
  }

  /** Every call matching the filter, counted (not only the newest page). */
  totals(filter: UsageFilter): UsageTotals {
    const w = where(filter);
    return this.db.prepare(`SELECT COUNT(*) AS calls, COALESCE(SUM(input_tokens), 0) AS inputTokens, COALESCE(SUM(output_tokens), 0) AS outputTokens FROM ai_usage ${w.sql}`).get(...w.args) as UsageTotals;
  }

  /** Calls and tokens by user, provider and model; the heaviest users first. */
  grouped(filter: UsageFilter): UsageGroup[] {
    const w = where(filter);
    return this.db.prepare(`SELECT user_id AS userId, provider, model, COUNT(*) AS calls, SUM(input_tokens) AS inputTokens, SUM(output_tokens) AS outputTokens, SUM(own_key) AS ownKeyCalls
      FROM ai_usage ${w.sql} GROUP BY user_id, provider, model ORDER BY SUM(SUM(input_tokens + output_tokens)) OVER (PARTITION BY user_id) DESC, user_id, inputTokens + outputTokens DESC`).all(...w.args) as UsageGroup[];
  }
}
