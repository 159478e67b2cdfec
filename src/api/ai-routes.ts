import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AuditLog } from '../audit/audit-log.ts';
import type { Store } from '../store/store.ts';
import type { ProviderKeys } from '../ai/provider-keys.ts';
import { ForbiddenError, NotFoundError } from '../errors.ts';
import { parseInput, text } from './validation.ts';
import { principalOf } from './principal.ts';
import { auditedBy } from './audited.ts';

const KeyBody = z.strictObject({ key: text().min(8, 'does not look like an API key').max(1000) });
const UsageQuery = z.strictObject({
  user: text().max(64).optional(),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
});

function requireAdmin(request: FastifyRequest): void {
  if (principalOf(request).user.role !== 'admin') throw new ForbiddenError('only admins manage model provider keys');
}

/** Provider keys (admins; set, never read back) and usage (admins: anyone's; users: their own). */
export function aiRoutes(app: FastifyInstance, deps: { keys: ProviderKeys; store: Store; audit: AuditLog; providers: () => string[] }): void {
  const audited = auditedBy(deps.audit);
  const known = (provider: string) => {
    if (!deps.providers().includes(provider)) throw new NotFoundError(`provider: no "${provider}" under ai.providers; configured: ${deps.providers().join(', ') || 'none'}`);
  };

  app.get('/api/ai/keys', async (request) => {
    requireAdmin(request);
    return deps.keys.configured().map((provider) => ({ provider, set: true }));
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
  app.get('/api/me/ai-keys', async (request) => deps.keys.configuredForUser(principalOf(request).user.id).map((provider) => ({ provider, set: true })));

  app.put<{ Params: { provider: string } }>('/api/me/ai-keys/:provider', async (request, reply) => {
    known(request.params.provider);
    const { key } = parseInput(KeyBody, request.body);
    const { user } = principalOf(request);
    await audited(request, 'ai.own-key.set', request.params.provider, () => deps.keys.setForUser(user.id, request.params.provider, key));
    return reply.status(204).send();
  });

  app.delete<{ Params: { provider: string } }>('/api/me/ai-keys/:provider', async (request, reply) => {
    const { user } = principalOf(request);
    if (!deps.keys.deleteForUser(user.id, request.params.provider)) throw new NotFoundError(`you have no key of your own for ${request.params.provider}`);
    return reply.status(204).send();
  });

  /** Every proxied model call, newest first, with totals. */
  app.get('/api/ai/usage', async (request) => {
    const { user } = principalOf(request);
    const q = parseInput(UsageQuery, request.query, 'query');
    let userId: number | undefined = user.id;
    if (user.role === 'admin') {
      if (q.user === undefined) userId = undefined;
      else {
        const target = deps.store.users.byUsername(q.user);
        if (!target) throw new NotFoundError(`user: ${q.user} not found`);
        userId = target.id;
      }
    } else if (q.user !== undefined && q.user !== user.username) {
      throw new ForbiddenError('user: only admins see other users\' usage');
    }
    const iso = (s: string | undefined) => (s ? new Date(s).toISOString() : undefined);
    const calls = deps.store.ai.usage({ userId, from: iso(q.from), to: iso(q.to), limit: q.limit });
    const name = (id: number) => deps.store.users.byId(id)?.username ?? '(deleted)';
    return {
      totals: { calls: calls.length, inputTokens: calls.reduce((n, c) => n + c.inputTokens, 0), outputTokens: calls.reduce((n, c) => n + c.outputTokens, 0) },
      calls: calls.map(({ userId: id, ...c }) => ({ user: name(id), ...c })),
    };
  });
}
