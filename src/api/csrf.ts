import type { FastifyRequest } from 'fastify';
import { ForbiddenError } from '../errors.ts';
import { originMatches } from '../auth/origin.ts';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Cookie-authenticated requests that change state must come from the gateway's
 * own pages. Browsers name the page's origin in Origin (and Sec-Fetch-Site); a
 * request without either is not from a browser page, and has no ambient cookie
 * to abuse beyond what SameSite=Lax already blocks.
 */
export function assertSameOrigin(request: FastifyRequest, publicHost: string | undefined): void {
  if (SAFE_METHODS.has(request.method)) return;
  const origin = request.headers.origin;
  if (origin !== undefined) {
    if (!originMatches(origin, [request.host, publicHost])) {
      throw new ForbiddenError(`cross-site request refused: Origin ${JSON.stringify(origin)} is not this gateway; use an API key for programs`);
    }
    return;
  }
  if (request.headers['sec-fetch-site'] === 'cross-site') {
    throw new ForbiddenError('cross-site request refused: use an API key for programs');
  }
}
