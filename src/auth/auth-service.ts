import type { IncomingHttpHeaders } from 'node:http';
import type { Store } from '../store/store.ts';
import type { User } from '../store/users.ts';
import type { ApiKeyRecord } from '../store/api-keys.ts';
import { UnauthorizedError } from '../errors.ts';
import { hashPassword, verifyPassword } from './passwords.ts';
import { randomToken, tokenHash } from './secrets.ts';
import { readCookie, SESSION_COOKIE } from './cookies.ts';

export interface Principal {
  user: User;
  via: 'session' | 'key';
}

const API_KEY_PREFIX = 'cy_';
// lastUsedAt is informational: one write per key per minute, not one per proxied asset.
const KEY_TOUCH_INTERVAL_MS = 60_000;

/** Passwords, sessions and API keys: everything that turns a request into a user. */
export class AuthService {
  private readonly store: Store;
  private readonly sessionTtlMs: number;
  private readonly keyTouchedAt = new Map<string, number>();

  constructor(store: Store, sessionTtlMs: number) {
    this.store = store;
    this.sessionTtlMs = sessionTtlMs;
  }

  async createUser(username: string, password: string, role: User['role']): Promise<User> {
    return this.store.users.create(username, await hashPassword(password), role);
  }

  /** Returns a new session token; the same error for unknown user, wrong password and disabled user. */
  async login(username: string, password: string): Promise<{ user: User; sessionToken: string; expiresAt: Date }> {
    const found = this.store.users.credentials(username);
    const ok = await verifyPassword(found?.passwordHash, password);
    if (!ok || !found || found.user.disabled) throw new UnauthorizedError('wrong username or password');
    const sessionToken = randomToken();
    const expiresAt = new Date(Date.now() + this.sessionTtlMs);
    this.store.sessions.create(tokenHash(sessionToken), found.user.id, expiresAt);
    return { user: found.user, sessionToken, expiresAt };
  }

  logout(sessionToken: string): void {
    this.store.sessions.delete(tokenHash(sessionToken));
  }

  createApiKey(userId: number, name: string): { record: ApiKeyRecord; key: string } {
    const key = API_KEY_PREFIX + randomToken();
    const record = this.store.apiKeys.create({
      id: randomToken(9), userId, name, keyHash: tokenHash(key), prefix: key.slice(0, 8),
    });
    return { record, key };
  }

  /** Session cookie, X-API-Key, or Authorization: Bearer <key>, in that order. */
  authenticate(headers: IncomingHttpHeaders): Principal | undefined {
    const session = readCookie(headers.cookie, SESSION_COOKIE);
    if (session) {
      const userId = this.store.sessions.userIdFor(tokenHash(session));
      const user = userId === undefined ? undefined : this.activeUser(userId);
      if (user) return { user, via: 'session' };
    }
    const key = apiKeyFrom(headers);
    if (key) {
      const record = this.store.apiKeys.byHash(tokenHash(key));
      const user = record && this.activeUser(record.userId);
      if (record && user) {
        this.touchKey(record.id);
        return { user, via: 'key' };
      }
    }
    return undefined;
  }

  /** authenticate(), or an UnauthorizedError saying which credential failed and what to do. */
  require(headers: IncomingHttpHeaders): Principal {
    const principal = this.authenticate(headers);
    if (principal) return principal;
    if (apiKeyFrom(headers)) throw new UnauthorizedError('the API key is invalid or was deleted: create a new one (POST /api/keys)');
    if (readCookie(headers.cookie, SESSION_COOKIE)) throw new UnauthorizedError('your session has expired or was ended: log in again (/login)');
    throw new UnauthorizedError();
  }

  private touchKey(id: string): void {
    const now = Date.now();
    if (now - (this.keyTouchedAt.get(id) ?? 0) < KEY_TOUCH_INTERVAL_MS) return;
    this.keyTouchedAt.set(id, now);
    this.store.apiKeys.touch(id);
  }

  private activeUser(id: number): User | undefined {
    const user = this.store.users.byId(id);
    return user && !user.disabled ? user : undefined;
  }
}

function apiKeyFrom(headers: IncomingHttpHeaders): string | undefined {
  const x = headers['x-api-key'];
  if (typeof x === 'string' && x) return x;
  const auth = headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice(7).trim() || undefined;
  return undefined;
}
