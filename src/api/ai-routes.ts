import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AuditLog } from '../audit/audit-log.ts';
import type { Config } from '../config.ts';
import type { Store } from '../store/store.ts';
import type { UsageFilter } from '../store/ai.ts';
import type { KeyHint, ProviderKeys } from '../ai/provider-keys.ts';
import { monthlyBudget } from '../ai/budget.ts';
import { ForbiddenError, InvalidInputError, NotFoundError } from '../errors.ts';
import { parseInput, text } from './validation.ts';
import { principalOf } from './principal.ts';
import { auditedBy } from './audited.ts';

const KeyBody = z.strictObject({ key: text().min(8, 'does not look like an API key').max(1000) });
const PeriodQuery = {
  user: text().max(64).optional(),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
};
const UsageQuery = z.strictObject({ ...PeriodQuery, limit: z.coerce.number().int().min(1).max(10_000).default(1000) });
const SummaryQuery = z.strictObject(PeriodQuery);

function requireAdmin(request: FastifyRequest): void {
  if (principalOf(request).user.role !== 'admin') throw new ForbiddenError('only admins manage model provider keys');
}

/** Each configured provider, whether it has a key in `stored`, and the key's hint; then keys left for providers no longer configured. */
function keyStatus(ai: Config['ai'], stored: KeyHint[]) {
  const byProvider = new Map(stored.map((k) => [k.provider, k.hint]));
  return [
    ...Object.entries(ai.providers).map(([provider, p]) => ({ provider, kind: p.kind, configured: true, set: byProvider.has(provider), hint: byProvider.get(provider) ?? null })),
    ...stored.filter((k) => !(k.provider in ai.providers)).map((k) => ({ provider: k.provider, kind: null, configured: false, set: true, hint: k.hint })),
  ];
}

/**
 * Provider keys (admins; set, never read back), keys users bring for
 * themselves, the limits in force, and usage (admins: anyone's; users: their own).
 */
export function aiRoutes(app: FastifyInstance, deps: { keys: ProviderKeys; store: Store; audit: AuditLog; ai: () => Config['ai'] }): void {
  const audited = auditedBy(deps.audit);
  const known = (provider: string) => {
    const names = Object.keys(deps.ai().providers);
    if (!names.includes(provider)) throw new NotFoundError(`provider: no "${provider}" under ai.providers; configured: ${names.join(', ') || 'none'}`);
  };
  const username = (id: number) => deps.store.users.byId(id)?.username ?? '(deleted)';

  /** Whose usage a query may see, and over which period: admins anyone's (all by default), users only their own. */
  const usageFilter = (request: FastifyRequest, q: { user?: string; from?: string; to?: string }): UsageFilter => {
    const { user } = principalOf(request);
    let userId: number | undefined = user.id;
    if (user.role === 'admin') {
      if (q.user === undefined || q.user === '') userId = undefined;
      else {
        const target = deps.store.users.byUsername(q.user);
        if (!target) throw new NotFoundError(`user: ${q.user} not found`);
        userId = target.id;
      }
    } else if (q.user !== undefined && q.user !== '' && q.user !== user.username) {
      throw new ForbiddenError('user: only admins see other users\' usage');
    }
    const from = q.from ? new Date(q.from).toISOString() : undefined;
    const to = q.to ? new Date(q.to).toISOString() : undefined;
    if (from && to && from >= to) throw new InvalidInputError('to: must be later than from');
    return { userId, from, to };
  };

  app.get('/api/ai/keys', async (request) => {
    requireAdmin(request);
    return keyStatus(deps.ai(), deps.keys.configured());
  });

  app.put<{ Params: { provider: string } }>('/api/ai/keys/:provider', async (request, reply) => {
    requireAdmin(request);
    known(request.params.provider);
    const { key } = parseInput(KeyBody, request.body);
    await audited(request, 'ai.key.set', request.params.provider, () => deps.keys.set(request.params.provider, key));
    return reply.status(204).send();
  });

  app.delete<{ Params: { provider: string } }>('/api/ai/keys/:provider', async (request, reply) => {
    requireAdmin(request);
    const removed = await audited(request, 'ai.key.delete', request.params.provider, () => deps.keys.delete(request.params.provider));
    if (!removed) throw new NotFoundError(`no key for provider ${request.params.provider}`);
    return reply.status(204).send();
  });

  // Keys users bring for their own calls (any user; never read back).
  app.get('/api/me/ai-keys', async (request) => keyStatus(deps.ai(), deps.keys.configuredForUser(principalOf(request).user.id)));

  app.put<{ Params: { provider: string } }>('/api/me/ai-keys/:provider', async (request, reply) => {
    known(request.params.provider);
    const { key } = parseInput(KeyBody, request.body);
    const { user } = principalOf(request);
    await audited(request, 'ai.own-key.set', request.params.provider, () => deps.keys.setForUser(user.id, request.params.provider, key));
    return reply.status(204).send();
  });

  app.delete<{ Params: { provider: string } }>('/api/me/ai-keys/:provider', async (request, reply) => {
    const { user } = principalOf(request);
    const removed = await audited(request, 'ai.own-key.delete', request.params.provider, () => deps.keys.deleteForUser(user.id, request.params.provider));
    if (!removed) throw new NotFoundError(`you have no key of your own for ${request.params.provider}`);
    return reply.status(204).send();
  });

  /** The limits and defaults in force (codeyard.yaml `ai:`), for everyone: no keys, no upstream addresses. */
  app.get('/api/ai/settings', async () => {
    const ai = deps.ai();
    return {
      defaultModel: ai.defaultModel,
      requestsPerMinute: ai.requestsPerMinute,
      monthlyTokens: ai.monthlyTokens,
      upstreamTimeoutSeconds: ai.upstreamTimeoutSeconds,
      providers: Object.entries(ai.providers).map(([provider, p]) => ({ provider, kind: p.kind, models: p.models ?? [] })),
    };
  });

  /** This month's token budget and what the caller has spent of it. */
  app.get('/api/me/ai-budget', async (request) => monthlyBudget(deps.store, principalOf(request).user.id, deps.ai().monthlyTokens));

  /** Every proxied model call, newest first, with totals over the whole period. */
  app.get('/api/ai/usage', async (request) => {
    const q = parseInput(UsageQuery, request.query, 'query');
    const filter = usageFilter(request, q);
    const calls = deps.store.ai.usage({ ...filter, limit: q.limit });
    return {
      totals: deps.store.ai.totals(filter),
      calls: calls.map(({ userId: id, ...c }) => ({ user: username(id), ...c })),
    };
  });

  /** Calls and tokens by user, provider and model over a period. */
  app.get('/api/ai/usage/summary', async (request) => {
    const filter = usageFilter(request, parseInput(SummaryQuery, request.query, 'query'));
    return {
      from: filter.from ?? null,
      to: filter.to ?? null,
      totals: deps.store.ai.totals(filter),
      rows: deps.store.ai.grouped(filter).map(({ userId, ...g }) => ({ user: username(userId), ...g })),
    };
  });
}
