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
    this.db.prepare('INSERT INTO ai_usage (at, user_id, sandbox_id, provider, model, input_tokens, output_tokens, latency_ms, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(u.at, u.userId, u.sandboxID, u.provider, u.model, u.inputTokens, u.outputTokens, u.latencyMs, u.status);
  }

  /** Tokens ever recorded, per provider (the metrics' totals). */
  tokenTotals(): { provider: string; input: number; output: number }[] {
    return this.db.prepare('SELECT provider, SUM(input_tokens) AS input, SUM(output_tokens) AS output FROM ai_usage GROUP BY provider').all() as { provider: string; input: number; output: number }[];
  }

  /** Tokens (in + out) a user has used since `since`. */
  tokensSince(userId: number, since: string): number {
    return (this.db.prepare('SELECT COALESCE(SUM(input_tokens + output_tokens), 0) AS n FROM ai_usage WHERE user_id = ? AND at >= ?').get(userId, since) as { n: number }).n;
  }

  usage(filter: { userId?: number; from?: string; to?: string; limit: number }): AiUsageRecord[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.userId !== undefined) { where.push('user_id = ?'); args.push(filter.userId); }
    if (filter.from) { where.push('at >= ?'); args.push(filter.from); }
    if (filter.to) { where.push('at < ?'); args.push(filter.to); }
    const rows = this.db.prepare(`SELECT * FROM ai_usage ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`).all(...args, filter.limit) as {
      at: string; user_id: number; sandbox_id: string; provider: string; model: string | null; input_tokens: number; output_tokens: number; latency_ms: number; status: number;
    }[];
    return rows.map((r) => ({ at: r.at, userId: r.user_id, sandboxID: r.sandbox_id, provider: r.provider, model: r.model, inputTokens: r.input_tokens, outputTokens: r.output_tokens, latencyMs: r.latency_ms, status: r.status }));
  }
}
