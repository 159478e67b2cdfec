import type { Store } from '../store/store.ts';

/** Where the current budget month began: the first of the month, 00:00 UTC. */
export function monthStart(now = new Date()): string {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)).toISOString();
}

export interface MonthlyBudget {
  /** The month's first instant (UTC). */
  since: string;
  /** Tokens (in + out) a user may spend of the organisation's keys this month; null: no limit. */
  monthlyTokens: number | null;
  /** Spent of the organisation's keys (calls with a user's own key do not count). */
  usedTokens: number;
  remainingTokens: number | null;
}

/** A user's monthly token budget and what is left of it. */
export function monthlyBudget(store: Store, userId: number, monthlyTokens: number | null, now = new Date()): MonthlyBudget {
  const since = monthStart(now);
  const usedTokens = store.ai.budgetedTokensSince(userId, since);
  return { since, monthlyTokens, usedTokens, remainingTokens: monthlyTokens === null ? null : Math.max(0, monthlyTokens - usedTokens) };
}
