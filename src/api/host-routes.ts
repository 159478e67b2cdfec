import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg, totalmem } from 'node:os';
import type { FastifyInstance } from 'fastify';
import type { SandboxService } from '../sandboxes/sandbox-service.ts';
import type { Store } from '../store/store.ts';
import { ForbiddenError } from '../errors.ts';
import { principalOf } from './principal.ts';

/** MemAvailable: what the kernel could hand out without swapping (free alone undercounts reclaimable cache). */
function availableMemoryBytes(): number | null {
  try {
    const m = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** GET /api/host (admins): the machine at a glance, for the portal's overview. */
export function hostRoutes(app: FastifyInstance, deps: { sandboxes: SandboxService; store: Store }): void {
  app.get('/api/host', async (request) => {
    if (principalOf(request).user.role !== 'admin') throw new ForbiddenError('only admins see the host overview');
    const usage = await deps.sandboxes.hostUsage();
    return {
      sandboxes: { total: usage.total, running: usage.running, byState: usage.byState },
      memory: { totalBytes: totalmem(), availableBytes: availableMemoryBytes(), sandboxesBytes: usage.memoryBytes, reservedMB: usage.reservedMemoryMB },
      cpu: { count: availableParallelism(), loadAverage: loadavg() },
      users: deps.store.users.list().filter((u) => !u.deletedAt).length,
    };
  });
}
