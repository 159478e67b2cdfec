import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { UserService } from '../auth/user-service.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { User } from '../store/users.ts';
import type { Store } from '../store/store.ts';
import { ForbiddenError } from '../errors.ts';
import { parseInput } from './validation.ts';
import { principalOf } from './principal.ts';

/** Usernames become subdomains (<user>.<domain>): lowercase DNS labels. */
export const usernameSchema = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/,
  'must be 1–32 lowercase letters, digits or hyphens, starting and ending with a letter or digit (it becomes a subdomain)')
  // <workspace>--<user>, <port>-<sandboxID> and ide-<sandboxID> are subdomains too: a username must not read as any.
  .refine((name) => !name.includes('--') && !/^(\d+|ide)-[a-z0-9]{20}$/.test(name),
    'must not contain "--" nor look like <port>-<sandboxID> or ide-<sandboxID> (they have other meanings as subdomains)');

export const passwordSchema = z.string().min(8, 'must be at least 8 characters').max(1024);

/** A limit as set: a number, null (no limit), or "default" (users.defaultLimits in the config). */
const limitSetting = (what: string, n: z.ZodNumber) => z.union([n.nullable(), z.literal('default')], {
  error: (iss) => (iss.code === 'invalid_union' ? `expected ${what}, null for no limit, or "default" for the configured default` : undefined),
}).optional();

const limitsSchema = z.strictObject({
  maxSandboxes: limitSetting('a whole number of sandboxes', z.number().int().min(0)),
  maxMemoryMB: limitSetting('a whole number of megabytes', z.number().int().min(0)),
  maxCpu: limitSetting('a number of CPUs', z.number().min(0)),
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

/** `limits`: in force (null: none); `limitSettings`: as set, "default" where the config's default applies. */
export function userView(u: User, store: Store, users: UserService) {
  return {
    username: u.username, role: u.role, disabled: u.disabled, limits: users.limitsOf(u), limitSettings: u.limits, createdAt: u.createdAt,
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
    return reply.status(201).send(userView(user, store, users));
  });

  app.get('/api/users', async (request) => {
    requireAdmin(request);
    return users.list().map((u) => userView(u, store, users));
  });

  app.get<{ Params: { username: string } }>('/api/users/:username', async (request) => {
    requireAdmin(request);
    return userView(users.get(request.params.username), store, users);
  });

  app.patch<{ Params: { username: string } }>('/api/users/:username', async (request) => {
    const admin = requireAdmin(request);
    const change = parseInput(PatchUserBody, request.body);
    const user = await users.update(request.params.username, change, admin);
    const { password, ...shown } = change;
    audit.record({ actor: admin.username, ip: request.ip, action: 'user.update', target: user.username, details: { ...shown, passwordReset: password !== undefined } });
    return userView(user, store, users);
  });

  app.delete<{ Params: { username: string } }>('/api/users/:username', async (request, reply) => {
    const admin = requireAdmin(request);
    const { purge } = parseInput(DeleteQuery, request.query, 'query');
    const result = await users.delete(admin, request.params.username, purge === 'true');
    audit.record({ actor: admin.username, ip: request.ip, action: 'user.delete', target: request.params.username, details: { purge: purge === 'true', ...result } });
    return reply.status(204).send();
  });
}
