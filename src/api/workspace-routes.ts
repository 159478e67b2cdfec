import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AuditLog } from '../audit/audit-log.ts';
import type { Store } from '../store/store.ts';
import type { User } from '../store/users.ts';
import type { WorkspaceService } from '../workspaces/workspace-service.ts';
import { ForbiddenError, NotFoundError } from '../errors.ts';
import { parseInput, text } from './validation.ts';
import { principalOf } from './principal.ts';
import { auditedBy } from './audited.ts';

const OwnerQuery = z.strictObject({ owner: text().max(64).optional() });
const DeleteQuery = z.strictObject({ owner: text().max(64).optional(), confirm: text().max(64).optional() });
const NameBody = z.strictObject({ name: text().min(1).max(64) });
const CreateBody = z.strictObject({ name: text().min(1).max(64), owner: text().max(64).optional() });

/**
 * /api/workspaces: a user's persistent workspaces. Admins reach anyone's with
 * `owner=<username>`; everyone else only their own.
 */
export function workspaceRoutes(app: FastifyInstance, deps: { workspaces: WorkspaceService; store: Store; audit: AuditLog }): void {
  const { workspaces, store } = deps;
  const audited = auditedBy(deps.audit);

  /** The user whose workspaces the caller means: themselves, or (admins only) `owner`. */
  const ownerFor = (request: FastifyRequest, owner: string | undefined): User => {
    const { user } = principalOf(request);
    if (owner === undefined || owner === user.username) return user;
    if (user.role !== 'admin') throw new ForbiddenError('owner: only admins reach other users\' workspaces');
    const target = store.users.byUsername(owner);
    if (!target) throw new NotFoundError(`owner: user ${owner} not found`);
    return target;
  };

  app.get('/api/workspaces', async (request) => {
    const { owner } = parseInput(OwnerQuery, request.query, 'query');
    return workspaces.withUsage(workspaces.list(ownerFor(request, owner)));
  });

  app.post('/api/workspaces', async (request, reply) => {
    const body = parseInput(CreateBody, request.body);
    const owner = ownerFor(request, body.owner);
    const created = await audited(request, 'workspace.create', `${owner.username}/${body.name}`, () => workspaces.create(owner, body.name));
    return reply.status(201).send(created);
  });

  app.get<{ Params: { name: string } }>('/api/workspaces/:name', async (request) => {
    const { owner } = parseInput(OwnerQuery, request.query, 'query');
    return (await workspaces.withUsage([workspaces.get(ownerFor(request, owner), request.params.name)]))[0];
  });

  /** Rename: `{"name": "<new name>"}`. */
  app.patch<{ Params: { name: string } }>('/api/workspaces/:name', async (request) => {
    const { owner } = parseInput(OwnerQuery, request.query, 'query');
    const { name } = parseInput(NameBody, request.body);
    const target = ownerFor(request, owner);
    return audited(request, 'workspace.rename', `${target.username}/${request.params.name}`, () => workspaces.rename(target, request.params.name, name), () => ({ to: name }));
  });

  /** Deletes the workspace and its files: only unused, and only with `?confirm=<name>`. */
  app.delete<{ Params: { name: string } }>('/api/workspaces/:name', async (request, reply) => {
    const { owner, confirm } = parseInput(DeleteQuery, request.query, 'query');
    const target = ownerFor(request, owner);
    await audited(request, 'workspace.delete', `${target.username}/${request.params.name}`, () => workspaces.delete(target, request.params.name, confirm));
    return reply.status(204).send();
  });
}
