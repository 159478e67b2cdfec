import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Store } from '../store/store.ts';
import { ideProxyPath } from '../proxy/routes.ts';
import { z } from 'zod';
import type { AuthService } from '../auth/auth-service.ts';
import type { UserService } from '../auth/user-service.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import { IDE_SESSION_COOKIE } from '../auth/cookies.ts';
import { KNOWN_DEVICE_MAX_AGE_SECONDS } from '../auth/known-devices.ts';
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

/** Clear-Site-Data on login and logout: the origin's caches and storage, service workers included (cookies are set or cleared one by one). */
const CLEAR_ORIGIN = '"cache", "storage"';

export function authRoutes(app: FastifyInstance, deps: { auth: AuthService; users: UserService; audit: AuditLog; store: Store; secureCookies?: boolean }): void {
  const { auth, users, audit, store } = deps;

  /**
   * Logging out in a browser ends its gateway session and drops the IDE-link
   * cookies it holds for the user's sandboxes (each lives on its sandbox's path).
   */
  const clearBrowserSessions = (reply: FastifyReply, userId: number) => {
    reply.clearCookie(auth.cookies.session, { path: '/', secure: auth.cookies.session.startsWith('__Host-') });
    for (const s of store.sandboxes.list(userId)) reply.clearCookie(IDE_SESSION_COOKIE, { path: ideProxyPath(s.sandboxID) });
  };

  app.post('/api/auth/login', async (request, reply) => {
    const { username, password } = parseInput(LoginBody, request.body);
    try {
      const { user, sessionToken, expiresAt, deviceCookie } = await auth.login(username, password, request.ip, { deviceCookie: request.cookies[auth.cookies.device] });
      audit.record({ actor: user.username, ip: request.ip, action: 'auth.login', target: user.username });
      const secure = deps.secureCookies === true || request.protocol === 'https';
      reply.setCookie(auth.cookies.session, sessionToken, { path: '/', httpOnly: true, sameSite: 'lax', secure, expires: expiresAt });
      // Outlives the session: this browser's next login skips the delay others' wrong guesses add (see AuthService.login).
      reply.setCookie(auth.cookies.device, deviceCookie, { path: '/', httpOnly: true, sameSite: 'lax', secure, maxAge: KNOWN_DEVICE_MAX_AGE_SECONDS });
      // Whatever a page of this origin left behind (a service worker that would answer for /login, stored data) goes.
      reply.header('clear-site-data', CLEAR_ORIGIN);
      return { username: user.username, role: user.role };
    } catch (err) {
      // A throttled attempt costs the attacker nothing: one audit entry per window, not one per request.
      if (err instanceof CodeyardError && (!(err instanceof RateLimitedError) || err.first)) {
        audit.record({ actor: null, ip: request.ip, action: 'auth.login', target: username.slice(0, 64), outcome: 'denied', details: { reason: err.kind } });
      }
      if (err instanceof RateLimitedError) reply.header('retry-after', String(err.retryAfterSeconds));
      throw err;
    }
  });

  app.post('/api/auth/logout', async (request, reply) => {
    const { user } = principalOf(request);
    const token = request.cookies[auth.cookies.session];
    if (token) auth.logout(token);
    clearBrowserSessions(reply, user.id);
    reply.header('clear-site-data', CLEAR_ORIGIN);
    audit.record({ actor: user.username, ip: request.ip, action: 'auth.logout', target: user.username });
    return reply.status(204).send();
  });

  /** Logs the caller out everywhere: every session of theirs ends, this one too. */
  app.post('/api/auth/logout-all', async (request, reply) => {
    const { user } = principalOf(request);
    auth.endSessions(user.id);
    audit.record({ actor: user.username, ip: request.ip, action: 'auth.logout_all', target: user.username });
    clearBrowserSessions(reply, user.id);
    reply.header('clear-site-data', CLEAR_ORIGIN);
    return reply.status(204).send();
  });

  app.get('/api/me', async (request) => {
    const { user, via } = principalOf(request);
    return { username: user.username, role: user.role, via, limits: users.limitsOf(user) };
  });

  app.post('/api/me/password', async (request, reply) => {
    const { user, sessionHash } = principalOf(request);
    const { oldPassword, newPassword } = parseInput(ChangePasswordBody, request.body);
    try {
      await users.changeOwnPassword(user, oldPassword, newPassword, sessionHash);
    } catch (err) {
      if (err instanceof CodeyardError) audit.record({ actor: user.username, ip: request.ip, action: 'user.password', target: user.username, outcome: 'denied', details: { reason: err.kind } });
      if (err instanceof RateLimitedError) reply.header('retry-after', String(err.retryAfterSeconds));
      throw err;
    }
    audit.record({ actor: user.username, ip: request.ip, action: 'user.password', target: user.username });
    return reply.status(204).send();
  });
}
