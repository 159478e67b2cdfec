import { createReadStream, rmSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AuditLog } from '../audit/audit-log.ts';
import type { Logger } from '../logger.ts';
import type { Store } from '../store/store.ts';
import type { SandboxService } from '../sandboxes/sandbox-service.ts';
import type { WorkspaceService } from '../workspaces/workspace-service.ts';
import { writeBackup } from '../backup/backup-writer.ts';
import { ForbiddenError, NotFoundError } from '../errors.ts';
import { parseInput, text } from './validation.ts';
import { principalOf } from './principal.ts';
import { auditedBy } from './audited.ts';

const BackupQuery = z.strictObject({ user: text().max(64).optional() });

/** POST /api/backups[?user=U]: writes a backup and streams it back (admin only); `codeyard backup` is its client. */
export function backupRoutes(app: FastifyInstance, deps: {
  store: Store; dataDir: string; log: Logger; audit: AuditLog; sandboxes: SandboxService; workspaces: WorkspaceService;
}): void {
  const audited = auditedBy(deps.audit);
  app.post('/api/backups', async (request, reply) => {
    if (principalOf(request).user.role !== 'admin') throw new ForbiddenError('only admins make backups');
    const { user: username } = parseInput(BackupQuery, request.query, 'query');
    const user = username === undefined ? null : deps.store.users.byUsername(username);
    if (user === undefined) throw new NotFoundError(`user: ${username} not found`);
    const { file, manifest } = await audited(request, 'backup.create', username ?? '*', () => writeBackup({
      store: deps.store, dataDir: deps.dataDir, log: deps.log, user,
      workspaces: user ? deps.workspaces.listAll().filter((w) => w.owner.id === user.id) : deps.workspaces.listAll(),
      pauseWorkspace: (id) => deps.sandboxes.pauseWorkspace(id),
    }), (r) => ({ workspaces: r.manifest.workspaces.length }));
    const stream = createReadStream(file);
    // The copy handed out is the only one kept: the data dir does not fill up with backups.
    stream.once('close', () => rmSync(file, { force: true }));
    return reply
      .header('content-type', 'application/gzip')
      .header('content-length', statSync(file).size)
      .header('content-disposition', `attachment; filename="${basename(file)}"`)
      .header('x-codeyard-workspaces', String(manifest.workspaces.length))
      .send(stream);
  });
}
