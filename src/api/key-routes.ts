import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AuthService } from '../auth/auth-service.ts';
import type { Store } from '../store/store.ts';
import { NotFoundError } from '../errors.ts';
import { parseInput } from './validation.ts';
import { principalOf } from './principal.ts';

const CreateKeyBody = z.strictObject({ name: z.string().trim().min(1).max(100) });

export function keyRoutes(app: FastifyInstance, auth: AuthService, store: Store): void {
  app.post('/api/keys', async (request, reply) => {
    const { user } = principalOf(request);
    const { name } = parseInput(CreateKeyBody, request.body);
    const { record, key } = auth.createApiKey(user.id, name);
    request.log.info({ username: user.username, keyId: record.id }, 'api key created');
    return reply.status(201).send({ id: record.id, name: record.name, key, prefix: record.prefix, createdAt: record.createdAt });
  });

  app.get('/api/keys', async (request) => {
    const { user } = principalOf(request);
    return store.apiKeys.listForUser(user.id).map(({ id, name, prefix, createdAt, lastUsedAt }) => ({ id, name, prefix, createdAt, lastUsedAt }));
  });

  app.delete<{ Params: { id: string } }>('/api/keys/:id', async (request, reply) => {
    const { user } = principalOf(request);
    if (!store.apiKeys.delete(request.params.id, user.id)) throw new NotFoundError(`api key ${request.params.id} not found`);
    request.log.info({ username: user.username, keyId: request.params.id }, 'api key deleted');
    return reply.status(204).send();
  });
}
