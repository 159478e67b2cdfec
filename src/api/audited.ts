import type { FastifyRequest } from 'fastify';
import type { AuditLog } from '../audit/audit-log.ts';
import { CapacityError, CodeyardError } from '../errors.ts';
import { principalOf } from './principal.ts';

export type Audited = <T>(request: FastifyRequest, action: string, target: string | null, op: () => Promise<T> | T,
  details?: (r: T) => Record<string, unknown>) => Promise<T>;

/** Runs `op` and records it: ok with `details(result)`, denied for a refusal, failed for our fault. */
export function auditedBy(audit: AuditLog): Audited {
  return async (request, action, target, op, details = () => ({})) => {
    const actor = principalOf(request).user.username;
    try {
      const result = await op();
      audit.record({ actor, ip: request.ip, action, target: target ?? (result as { sandboxID?: string })?.sandboxID ?? null, details: details(result) });
      return result;
    } catch (err) {
      const status = err instanceof CodeyardError ? err.status : 500;
      audit.record({ actor, ip: request.ip, action, target, outcome: status < 500 || err instanceof CapacityError ? 'denied' : 'failed', details: { reason: (err as Error).message.slice(0, 300) } });
      throw err;
    }
  };
}
