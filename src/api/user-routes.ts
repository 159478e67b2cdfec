import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { UserService } from '../auth/user-service.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { User } from '../store/users.ts';
import type { Store } from '../store/store.ts';
import { ForbiddenError } from '../errors.ts';
import { number, parseInput } from './validation.ts';
import { principalOf } from './principal.ts';

/** Usernames become subdomains (<user>.<domain>): lowercase DNS labels. */
export const usernameSchema = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/,
  'must be 1–32 lowercase letters, digits or hyphens, starting and ending with a letter or digit (it becomes a subdomain)')
  // <workspace>--<user> and <port>-<sandboxID> are subdomains too: a username must not read as either.
  .refine((name) => !name.includes('--') && !/^\d+-[a-z0-9]{20}$/.test(name), 'must not contain "--" nor look like <port>-<sandboxID> (both have other meanings as subdomains)');

export const passwordSchema = z.string().min(8, 'must be at least 8 characters').max(1024);

const limitsSchema = z.strictObject({
  maxSandboxes: number('a whole number of sandboxes, or null for no limit').int().min(0).nullable().optional(),
  maxMemoryMB: number('a whole number of megabytes, or null for no limit').int().min(0).nullable().optional(),
  maxCpu: number('a number of CPUs, or null for no limit').min(0).nullable().optional(),
});

const CreateUserBody = z.strictObject({
  username: usernameSchema,
  password: passwordSchema,
  role: z.enum(['admin', 'user']).optional(),
  disabled: z.boolean().optional(),
  limits: limitsSchema.optional(),
});

const PatchUserBody = z.strictObject({
  role: z.enum(['admin', 'user']).optional(),
  password: passwordSchema.optional(),
  disabled: z.boolean().optional(),
  limits: limitsSchema.optional(),
});

const DeleteQuery = z.strictObject({ purge: z.enum(['true', 'false']).optional() });

export function userView(u: User, store: Store) {
  return {
    username: u.username, role: u.role, disabled: u.disabled, limits: u.limits, createdAt: u.createdAt,
    sandboxes: store.sandboxes.list(u.id).length,
  };
}

function requireAdmin(request: FastifyRequest): User {
  const { user } = principalOf(request);
  if (user.role !== 'admin') throw new ForbiddenError('only admins manage users');
  return user;
}

export function userRoutes(app: FastifyInstance, deps: { users: UserService; audit: AuditLog; store: Store }): void {
  const { users, audit, store } = deps;

  app.post('/api/users', async (request, reply) => {
    const admin = requireAdmin(request);
    const body = parseInput(CreateUserBody, request.body);
    const user = await users.create(body);
    audit.record({ actor: admin.username, ip: request.ip, action: 'user.create', target: user.username, details: { role: user.role, limits: user.limits } });
    return reply.status(201).send(userView(user, store));
  });

  app.get('/api/users', async (request) => {
    requireAdmin(request);
    return users.list().map((u) => userView(u, store));
  });

  app.get<{ Params: { username: string } }>('/api/users/:username', async (request) => {
    requireAdmin(request);
    return userView(users.get(request.params.username), store);
  });

  app.patch<{ Params: { username: string } }>('/api/users/:username', async (request) => {
    const admin = requireAdmin(request);
    const change = parseInput(PatchUserBody, request.body);
    const user = await users.update(request.params.username, change);
    const { password, ...shown } = change;
    audit.record({ actor: admin.username, ip: request.ip, action: 'user.update', target: user.username, details: { ...shown, passwordReset: password !== undefined } });
    return userView(user, store);
  });

  app.delete<{ Params: { username: string } }>('/api/users/:username', async (request, reply) => {
    const admin = requireAdmin(request);
    const { purge } = parseInput(DeleteQuery, request.query, 'query');
    const result = await users.delete(admin, request.params.username, purge === 'true');
    audit.record({ actor: admin.username, ip: request.ip, action: 'user.delete', target: request.params.username, details: { purge: purge === 'true', ...result } });
    return reply.status(204).send();
  });
}
