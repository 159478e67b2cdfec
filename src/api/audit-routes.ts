import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Store } from '../store/store.ts';
import { ForbiddenError } from '../errors.ts';
import { parseInput } from './validation.ts';
import { principalOf } from './principal.ts';

const AuditQuery = z.strictObject({
  user: z.string().max(64).optional(),
  action: z.string().max(64).optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export function auditRoutes(app: FastifyInstance, store: Store): void {
  /** Newest first. ?user=dan&action=sandbox.&since=2026-01-01T00:00:00Z&limit=100 */
  app.get('/api/audit', async (request) => {
    if (principalOf(request).user.role !== 'admin') throw new ForbiddenError('only admins read the audit log');
    const q = parseInput(AuditQuery, request.query, 'query');
    const iso = (s?: string) => (s ? new Date(s).toISOString() : undefined);
    return store.audit.query({ actor: q.user, action: q.action, since: iso(q.since), until: iso(q.until), limit: q.limit });
  });
}
