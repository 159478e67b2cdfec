import type { FastifyInstance } from 'fastify';
import { LOGIN_PAGE_CSP, loginPage, safeNext } from '../portal/login-page.ts';

export function loginRoutes(app: FastifyInstance): void {
  app.get<{ Querystring: { next?: string; done?: string } }>('/login', async (request, reply) => {
    reply.header('content-security-policy', LOGIN_PAGE_CSP);
    reply.header('x-frame-options', 'DENY');
    reply.header('cache-control', 'no-store');
    reply.type('text/html; charset=utf-8');
    return loginPage(safeNext(request.query.next), request.query.done === '1');
  });
}
