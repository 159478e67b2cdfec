import type { FastifyRequest } from 'fastify';
import type { Principal } from '../auth/auth-service.ts';
import { UnauthorizedError } from '../errors.ts';

const PRINCIPAL = Symbol('principal');
type WithPrincipal = FastifyRequest & { [PRINCIPAL]?: Principal };

export function setPrincipal(request: FastifyRequest, principal: Principal): void {
  (request as WithPrincipal)[PRINCIPAL] = principal;
}

/** The authenticated caller; the auth hook guarantees one on every non-public route. */
export function principalOf(request: FastifyRequest): Principal {
  const p = (request as WithPrincipal)[PRINCIPAL];
  if (!p) throw new UnauthorizedError();
  return p;
}
