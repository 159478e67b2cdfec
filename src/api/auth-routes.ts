import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AuthService } from '../auth/auth-service.ts';
import type { UserService } from '../auth/user-service.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import { SESSION_COOKIE } from '../auth/cookies.ts';
import { CodeyardError, RateLimitedError } from '../errors.ts';
import { parseInput } from './validation.ts';
import { principalOf } from './principal.ts';
import { passwordSchema } from './user-routes.ts';

const LoginBody = z.strictObject({
  username: z.string().min(1).max(64),
  password: z.string().min(1).max(1024),
});

const ChangePasswordBody = z.strictObject({
  oldPassword: z.string().min(1).max(1024),
  newPassword: passwordSchema,
});

export function authRoutes(app: FastifyInstance, deps: { auth: AuthService; users: UserService; audit: AuditLog }): void {
  const { auth, users, audit } = deps;

  app.post('/api/auth/login', async (request, reply) => {
    const { username, password } = parseInput(LoginBody, request.body);
    try {
      const { user, sessionToken, expiresAt } = await auth.login(username, password, request.ip);
      audit.record({ actor: user.username, ip: request.ip, action: 'auth.login', target: user.username });
      reply.setCookie(SESSION_COOKIE, sessionToken, {
        path: '/', httpOnly: true, sameSite: 'lax', secure: request.protocol === 'https', expires: expiresAt,
      });
      return { username: user.username, role: user.role };
    } catch (err) {
      if (err instanceof CodeyardError) {
        audit.record({ actor: null, ip: request.ip, action: 'auth.login', target: username, outcome: 'denied', details: { reason: err.kind } });
      }
      if (err instanceof RateLimitedError) reply.header('retry-after', String(err.retryAfterSeconds));
      throw err;
    }
  });

  app.post('/api/auth/logout', async (request, reply) => {
    const token = request.cookies[SESSION_COOKIE];
    if (token) auth.logout(token);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return reply.status(204).send();
  });

  /** Logs the caller out everywhere: every session of theirs ends, this one too. */
  app.post('/api/auth/logout-all', async (request, reply) => {
    const { user } = principalOf(request);
    auth.endSessions(user.id);
    audit.record({ actor: user.username, ip: request.ip, action: 'auth.logout_all', target: user.username });
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return reply.status(204).send();
  });

  app.get('/api/me', async (request) => {
    const { user, via } = principalOf(request);
    return { username: user.username, role: user.role, via, limits: user.limits };
  });

  app.post('/api/me/password', async (request, reply) => {
    const { user, sessionHash } = principalOf(request);
    const { oldPassword, newPassword } = parseInput(ChangePasswordBody, request.body);
    await users.changeOwnPassword(user, oldPassword, newPassword, sessionHash);
    audit.record({ actor: user.username, ip: request.ip, action: 'user.password', target: user.username });
    return reply.status(204).send();
  });
}
