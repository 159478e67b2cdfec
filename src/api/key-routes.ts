import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AuthService } from '../auth/auth-service.ts';
import type { Store } from '../store/store.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import { NotFoundError } from '../errors.ts';
import { parseInput } from './validation.ts';
import { principalOf } from './principal.ts';

const CreateKeyBody = z.strictObject({ name: z.string().trim().min(1).max(100) });

export function keyRoutes(app: FastifyInstance, deps: { auth: AuthService; store: Store; audit: AuditLog }): void {
  const { auth, store, audit } = deps;
  app.post('/api/keys', async (request, reply) => {
    const { user } = principalOf(request);
    const { name } = parseInput(CreateKeyBody, request.body);
    const { record, key } = auth.createApiKey(user.id, name);
    audit.record({ actor: user.username, ip: request.ip, action: 'key.create', target: record.id, details: { name: record.name } });
    return reply.status(201).send({ id: record.id, name: record.name, key, prefix: record.prefix, createdAt: record.createdAt });
  });

  app.get('/api/keys', async (request) => {
    const { user } = principalOf(request);
    return store.apiKeys.listForUser(user.id).map(({ id, name, prefix, createdAt, lastUsedAt }) => ({ id, name, prefix, createdAt, lastUsedAt }));
  });

  app.delete<{ Params: { id: string } }>('/api/keys/:id', async (request, reply) => {
    const { user } = principalOf(request);
    if (!auth.deleteApiKey(user.id, request.params.id)) throw new NotFoundError(`api key ${request.params.id} not found`);
    audit.record({ actor: user.username, ip: request.ip, action: 'key.delete', target: request.params.id });
    return reply.status(204).send();
  });
}
