import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AuthService } from '../auth/auth-service.ts';
import { SESSION_COOKIE } from '../auth/cookies.ts';
import { parseInput } from './validation.ts';
import { principalOf } from './principal.ts';

const LoginBody = z.strictObject({
  username: z.string().min(1).max(64),
  password: z.string().min(1).max(1024),
});

export function authRoutes(app: FastifyInstance, auth: AuthService): void {
  app.post('/api/auth/login', async (request, reply) => {
    const { username, password } = parseInput(LoginBody, request.body);
    const { user, sessionToken, expiresAt } = await auth.login(username, password);
    request.log.info({ username }, 'login');
    reply.setCookie(SESSION_COOKIE, sessionToken, {
      path: '/', httpOnly: true, sameSite: 'lax', secure: request.protocol === 'https', expires: expiresAt,
    });
    return { username: user.username, role: user.role };
  });

  app.post('/api/auth/logout', async (request, reply) => {
    const token = request.cookies[SESSION_COOKIE];
    if (token) auth.logout(token);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return reply.status(204).send();
  });

  app.get('/api/me', async (request) => {
    const { user, via } = principalOf(request);
    return { username: user.username, role: user.role, via };
  });
}
