import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import type { Store } from '../store/store.ts';
import type { User } from '../store/users.ts';
import type { ApiKeyRecord } from '../store/api-keys.ts';
import { ForbiddenError, RateLimitedError, UnauthorizedError } from '../errors.ts';
import { hashPassword, verifyPassword } from './passwords.ts';
import { randomToken, tokenHash } from './secrets.ts';
import { cookieNames, IDE_SESSION_COOKIE, readCookie, readCookies, type CookieNames } from './cookies.ts';
import { HandoffTokens } from './handoff-tokens.ts';
import type { SessionRecord } from '../store/sessions.ts';
import { IdeTokens, looksLikeJwt, type IdeTokenClaims } from './ide-tokens.ts';
import { LoginThrottle } from './login-throttle.ts';
import { KnownDevices } from './known-devices.ts';

export interface Principal {
  user: User;
  via: 'session' | 'key' | 'ide-link' | 'ide-session' | 'subdomain-session';
  /** Set when the credential opens one sandbox only (an IDE link or the session it made). */
  sandboxScope?: string;
  /** Hash of the session token, when a session authenticated the request. */
  sessionHash?: string;
  /** The API key's id, when a key authenticated the request. */
  keyId?: string;
}

export interface AuthOptions {
  /** Cookie names; the __Host- ones (HTTPS) cannot be planted by a sibling subdomain. Default: cookieNames(false). */
  cookies?: CookieNames;
  sessionTtlMs: number;
  sessionIdleMs: number;
  ideTokenTtlSeconds: number;
  throttle: { windowMs: number; freeFailures: number; baseDelayMs: number };
}

const API_KEY_PREFIX = 'cy_';
// Informational timestamps: one write per credential per minute, not one per proxied asset.
const TOUCH_INTERVAL_MS = 60_000;
/**
 * How long a looked-up session or API key is trusted without asking the store again:
 * proxied assets and API calls do not each cost two SQLite reads. Any revocation
 * (logout, password change, disabled user, deleted key) empties the cache at once.
 */
const CREDENTIAL_CACHE_MS = 10_000;
const CREDENTIAL_CACHE_MAX = 10_000;
/** A username alone, or an IP alone (many people behind one NAT), gets this many times the pair's free failures. */
const WIDE_KEY_FACTOR = 4;
/**
 * The most a username-wide or IP-wide back-off delays an attempt. Those signals never
 * refuse (others' guesses must not lock the owner out): they only slow every attempt
 * down a little, and a known device (KnownDevices) not at all.
 */
export const WIDE_DELAY_CAP_MS = 2_000;

/**
 * Passwords, sessions, API keys and IDE links: everything that turns a request
 * into a user. Emits `revoked` ({ userId }, { sessionHash }, { sandboxID } or { keyId })
 * when credentials stop being valid, so open connections can be cut.
 */
export type Revocation = { userId?: number; sessionHash?: string; sandboxID?: string; keyId?: string };

/** A CDP link is a bearer URL, reusable while it lives: it lives a minute at most. */
const CDP_LINK_TTL_SECONDS = 60;

export class AuthService extends EventEmitter<{ revoked: [Revocation] }> {
  /** CDP links in use: the client each is bound to, until it expires. */
  private readonly linkClients = new Map<string, { client: string; until: number }>();
  private readonly store: Store;
  private readonly opts: AuthOptions;
  private readonly tokens: IdeTokens;
  private readonly throttle: LoginThrottle;
  private readonly devices: KnownDevices;
  private readonly touchedAt = new Map<string, number>();
  private readonly handoffs: HandoffTokens;
  /** By cookie value and by API key (the secrets themselves: they are in every request anyway). */
  private readonly sessionCache = new Map<string, CachedSession>();
  private readonly keyCache = new Map<string, { key: ApiKeyRecord; user: User; at: number }>();

  constructor(store: Store, tokens: IdeTokens, opts: AuthOptions, handoffs?: HandoffTokens) {
    super();
    this.store = store;
    this.tokens = tokens;
    this.opts = opts;
    this.throttle = new LoginThrottle(opts.throttle);
    this.devices = new KnownDevices(tokens.secretForHandoffs());
    this.handoffs = handoffs ?? new HandoffTokens(tokens.secretForHandoffs());
    this.on('revoked', () => { this.sessionCache.clear(); this.keyCache.clear(); });
  }

  /** The names of the gateway's cookies on this deployment. */
  get cookies(): CookieNames {
    return this.opts.cookies ?? cookieNames(false);
  }

  get ideTokenTtlSeconds(): number {
    return this.opts.ideTokenTtlSeconds;
  }

  async createUser(username: string, password: string, role: User['role'], limits?: User['limits']): Promise<User> {
    return this.store.users.create(username, await hashPassword(password), role, limits);
  }

  /**
   * A new session for the right password. Unknown user, wrong password and
   * disabled user get the same answer in the same time. Repeated failures of one
   * (username, IP) pair back off exponentially and are refused meanwhile (429 with
   * Retry-After): the only hard block. Failures of a username from everywhere, or
   * of an IP across usernames, only delay each further attempt (at most
   * WIDE_DELAY_CAP_MS), and not at all for a browser holding a known-device
   * cookie for that user: nobody else's guessing can lock the owner out.
   */
  async login(username: string, password: string, ip: string, opts: { deviceCookie?: string } = {}): Promise<{ user: User; sessionToken: string; expiresAt: Date; deviceCookie: string }> {
    const name = username.toLowerCase().slice(0, 64);
    const free = this.opts.throttle.freeFailures;
    const pair: [string, number] = [`pair:${name}|${ip}`, free];
    // The username and the IP alone get more room before they slow anyone down (one NAT is many people).
    const wide: [string, number][] = [[`user:${name}`, free * WIDE_KEY_FACTOR], [`ip:${ip}`, free * WIDE_KEY_FACTOR]];
    const wait = this.throttle.retryAfterMs([pair[0]]);
    if (wait > 0) {
      const seconds = Math.ceil(wait / 1000);
      throw new RateLimitedError(`too many failed logins: try again in ${seconds} s`, seconds, this.throttle.firstRefusal([pair[0]]));
    }
    const found = this.store.users.credentials(username);
    const knownDevice = found !== undefined && this.devices.verify(opts.deviceCookie, found.user.id);
    const delay = knownDevice ? 0 : Math.min(WIDE_DELAY_CAP_MS, this.throttle.retryAfterMs(wide.map(([key]) => key)));
    // Counted before the password is checked (and before any await), so parallel guesses cannot all slip past the limit.
    for (const [key, n] of [pair, ...wide]) this.throttle.fail(key, n);
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    const ok = await verifyPassword(found?.passwordHash, password);
    if (!ok || !found || found.user.disabled || found.user.deletedAt) throw new UnauthorizedError('wrong username or password');
    this.throttle.succeed([pair[0]]);
    // The owner's success does not wipe what others' guesses built up: it takes back only its own count.
    for (const [key, n] of wide) this.throttle.refund(key, n);
    const sessionToken = randomToken();
    const expiresAt = new Date(Date.now() + this.opts.sessionTtlMs);
    this.store.sessions.create(tokenHash(sessionToken), found.user.id, expiresAt);
    return { user: found.user, sessionToken, expiresAt, deviceCookie: this.devices.issue(found.user.id) };
  }

  /** Guards checks of a known user's password (changing it) with the same back-off as logins. */
  async checkPasswordThrottled(userId: number, password: string): Promise<boolean> {
    const key = `password:${userId}`;
    const wait = this.throttle.retryAfterMs([key]);
    if (wait > 0) throw new RateLimitedError(`too many wrong passwords: try again in ${Math.ceil(wait / 1000)} s`, Math.ceil(wait / 1000), false);
    this.throttle.fail(key);
    const ok = await verifyPassword(this.store.users.passwordHash(userId), password);
    if (ok) this.throttle.succeed([key]);
    return ok;
  }

  /** Ends the session, and those it handed to subdomains, with their open connections. */
  logout(sessionToken: string): void {
    const hash = tokenHash(sessionToken);
    this.store.sessions.delete(hash);
    this.emit('revoked', { sessionHash: hash });
    for (const child of this.store.sessions.deleteChildren(hash)) this.emit('revoked', { sessionHash: child });
  }

  /** Ends all of a user's sessions (but `keepSessionHash`) and cuts their open connections. */
  endSessions(userId: number, keepSessionHash?: string): void {
    this.store.sessions.deleteForUser(userId, keepSessionHash);
    this.emit('revoked', { userId });
  }

  deleteApiKey(userId: number, keyId: string): boolean {
    const deleted = this.store.apiKeys.delete(keyId, userId);
    if (deleted) this.emit('revoked', { keyId });
    return deleted;
  }

  /** A user's record changed (limits, role, state): requests stop seeing the cached copy. */
  forgetCached(userId: number): void {
    for (const cache of [this.sessionCache, this.keyCache] as Map<string, { user: User }>[]) {
      for (const [id, entry] of cache) if (entry.user.id === userId) cache.delete(id);
    }
  }

  /** A user's rights changed (role, for one): connections opened under the old ones are cut. */
  revokeConnections(userId: number): void {
    this.emit('revoked', { userId });
  }

  /** After a sandbox is deleted: its IDE-link sessions go too. */
  revokeSandbox(sandboxID: string): void {
    this.store.sessions.deleteForSandbox(sandboxID);
    this.emit('revoked', { sandboxID });
  }

  async changePassword(userId: number, password: string): Promise<void> {
    this.store.users.update(userId, { passwordHash: await hashPassword(password) });
  }

  createApiKey(userId: number, name: string): { record: ApiKeyRecord; key: string } {
    const key = API_KEY_PREFIX + randomToken();
    const record = this.store.apiKeys.create({
      id: randomToken(9), userId, name, keyHash: tokenHash(key), prefix: key.slice(0, 8),
    });
    return { record, key };
  }

  /** An IDE link, or with `bearerLink` a CDP link (a reusable bearer URL: a minute at most, and bound to its first client). */
  issueIdeToken(user: User, sandboxID: string, bearerLink = false) {
    return this.tokens.issue(user, sandboxID, bearerLink ? Math.min(CDP_LINK_TTL_SECONDS, this.opts.ideTokenTtlSeconds) : this.opts.ideTokenTtlSeconds);
  }

  /**
   * Who is asking. With `sandboxID` (the proxy), credentials scoped to that
   * sandbox count too: an IDE link as a Bearer token, or the session an IDE
   * link made. Without it (the API) they do not. Throws a 401 saying which
   * credential failed and what to do, or a 403 for a link to another sandbox.
   */
  async require(headers: IncomingHttpHeaders, sandboxID?: string, client?: string): Promise<Principal> {
    // Every value, not the first: a page cannot shadow the real session by planting a cookie on a longer path.
    for (const value of readCookies(headers.cookie, this.cookies.session)) {
      const session = this.fromSessionCookie(value, null);
      if (session) return session;
    }
    const bearer = bearerFrom(headers);
    const key = typeof headers['x-api-key'] === 'string' && headers['x-api-key'] ? headers['x-api-key'] : bearer && !looksLikeJwt(bearer) ? bearer : undefined;
    if (key) {
      const principal = this.fromApiKey(key);
      if (principal) return principal;
    }
    if (sandboxID !== undefined) {
      if (bearer && looksLikeJwt(bearer)) {
        const { principal, claims } = await this.checkIdeToken(bearer, sandboxID);
        this.bindLink(claims, client);
        return principal;
      }
      for (const value of readCookies(headers.cookie, IDE_SESSION_COOKIE)) {
        const p = this.fromSessionCookie(value, sandboxID);
        if (p) return p;
      }
    } else if (bearer && looksLikeJwt(bearer)) {
      throw new UnauthorizedError('an IDE link opens its sandbox\'s IDE only; use an API key or a session for the API');
    }
    if (key) throw new UnauthorizedError('the API key is invalid or was deleted: create a new one (POST /api/keys)');
    if (readCookie(headers.cookie, this.cookies.session)) throw new UnauthorizedError('your session has expired or was ended: log in again (/login)');
    throw new UnauthorizedError();
  }

  /**
   * Checks an IDE link for `sandboxID` and spends it: each link opens one browser session, once.
   * With `host` (the sandbox's own IDE host) the session is that host's alone, like a hand-off's.
   */
  async redeemIdeToken(token: string, sandboxID: string, host?: string): Promise<{ principal: Principal; sessionToken: string }> {
    const { principal, claims } = await this.checkIdeToken(token, sandboxID);
    if (!this.store.sessions.redeem(claims.jti, new Date(claims.exp * 1000))) {
      throw new UnauthorizedError('this IDE link was already used: ask for a new one (POST /api/sandboxes/<id>/ide-token)');
    }
    const sessionToken = randomToken();
    this.store.sessions.create(tokenHash(sessionToken), principal.user.id, new Date(Date.now() + this.opts.sessionTtlMs), host ? { host } : { sandboxId: sandboxID });
    return { principal: { ...principal, via: host ? 'subdomain-session' : 'ide-session', sessionHash: tokenHash(sessionToken) }, sessionToken };
  }

  /** A one-time, minute-long token that carries a logged-in user over to one subdomain (the base domain's cookie cannot go there). */
  issueHandoff(principal: Principal, host: string, stateDigest: string): Promise<string> {
    if (!principal.sessionHash) throw new ForbiddenError('only a browser session can sign in to a subdomain');
    return this.handoffs.issue(principal.user, host, principal.sessionHash, stateDigest);
  }

  /** Spends a hand-off token on the host it names: a session for that host alone, ending when the base session would. */
  async redeemHandoff(token: string, host: string, state: string | undefined): Promise<{ principal: Principal; sessionToken: string }> {
    const claims = await this.handoffs.verify(token, host, state);
    const user = this.activeUser(claims.uid);
    if (!user || user.username !== claims.sub) throw new UnauthorizedError('this sign-in link was revoked: log in again');
    // It lives no longer than the session that handed it over, and ends with it.
    const parent = this.store.sessions.get(claims.sid);
    if (!parent || parent.userId !== user.id || Date.parse(parent.expiresAt) <= Date.now()) throw new UnauthorizedError('the session that made this sign-in link has ended: log in again');
    if (!this.store.sessions.redeem(claims.jti, new Date(claims.exp * 1000))) throw new UnauthorizedError('this sign-in link was already used: open the address again to get a new one');
    const sessionToken = randomToken();
    this.store.sessions.create(tokenHash(sessionToken), user.id, new Date(parent.expiresAt), { host, parentHash: claims.sid });
    return { principal: { user, via: 'subdomain-session', sessionHash: tokenHash(sessionToken) }, sessionToken };
  }

  /**
   * Who is asking on a subdomain: the session handed to exactly this host, or an
   * API key (programs reaching a port preview). Never the base domain's session
   * (its cookie is not sent here) nor another subdomain's.
   */
  requireForHost(headers: IncomingHttpHeaders, host: string): Principal {
    for (const value of readCookies(headers.cookie, this.cookies.subdomain)) {
      const found = this.session(value);
      if (found && found.session.host === host) {
        return { user: found.user, via: 'subdomain-session', sessionHash: found.hash };
      }
    }
    const bearer = bearerFrom(headers);
    const key = typeof headers['x-api-key'] === 'string' && headers['x-api-key'] ? headers['x-api-key'] : bearer;
    if (key) {
      const principal = this.fromApiKey(key);
      if (principal) return principal;
      throw new UnauthorizedError('the API key is invalid or was deleted: create a new one (POST /api/keys)');
    }
    throw new UnauthorizedError('not signed in to this address: open it in a browser (it signs you in through the portal), or send an API key');
  }

  /** Drops sessions past their absolute or idle expiry, and spent links past theirs. */
  sweep(now = new Date()): void {
    this.store.sessions.deleteExpired(now, new Date(now.getTime() - this.opts.sessionIdleMs));
  }

  /**
   * A link used as a bearer token (a CDP client checks it on every request) belongs to the
   * first client that used it (address and user agent): a copy in anyone else's hands is refused.
   */
  private bindLink(claims: IdeTokenClaims, client: string | undefined): void {
    const now = Date.now();
    for (const [jti, b] of this.linkClients) if (b.until < now) this.linkClients.delete(jti);
    const bound = this.linkClients.get(claims.jti);
    if (!bound) { this.linkClients.set(claims.jti, { client: client ?? '', until: claims.exp * 1000 }); return; }
    if (bound.client !== (client ?? '')) throw new UnauthorizedError('this link is already in use by another client: ask for a new one (POST /api/sandboxes/<id>/ide-token)');
  }

  private async checkIdeToken(token: string, sandboxID: string): Promise<{ principal: Principal; claims: IdeTokenClaims }> {
    const claims = await this.tokens.verify(token);
    if (claims.sandboxID !== sandboxID) throw new ForbiddenError('this IDE link opens another sandbox');
    if (this.store.sessions.isRedeemed(claims.jti)) {
      throw new UnauthorizedError('this IDE link was already used: ask for a new one (POST /api/sandboxes/<id>/ide-token)');
    }
    const user = this.store.users.byId(claims.uid);
    if (!user || user.username !== claims.sub || user.disabled || user.deletedAt) throw new UnauthorizedError('this IDE link was revoked');
    return { principal: { user, via: 'ide-link', sandboxScope: sandboxID }, claims };
  }

  /**
   * A live session for the cookie value, and its user; cached briefly (see
   * CREDENTIAL_CACHE_MS) by the value itself, so a hit costs no hashing and no
   * date parsing: the proxy asks this for every asset it serves.
   */
  private session(value: string): { session: SessionRecord; user: User; hash: string } | undefined {
    const now = Date.now();
    let entry = this.sessionCache.get(value);
    if (!entry || now - entry.at > CREDENTIAL_CACHE_MS) {
      const hash = tokenHash(value);
      const session = this.store.sessions.get(hash);
      const user = session && this.activeUser(session.userId);
      if (!session || !user) { this.sessionCache.delete(value); return undefined; }
      entry = { session, user, hash, at: now, expiresMs: Date.parse(session.expiresAt), lastSeenMs: Date.parse(session.lastSeenAt), touchedMs: 0 };
      remember(this.sessionCache, value, entry);
    }
    if (entry.expiresMs <= now) return undefined;
    if (entry.lastSeenMs <= now - this.opts.sessionIdleMs) {
      // The cached copy's last-seen may be older than the store's: ask the store before calling it idle.
      if (entry.at !== now) { this.sessionCache.delete(value); return this.session(value); }
      return undefined;
    }
    // Last-seen is informational: one write per session per minute, not one per request.
    if (now - entry.touchedMs >= TOUCH_INTERVAL_MS) {
      entry.touchedMs = now;
      // Best-effort: a store that cannot write (a full disk) must not turn every request into an error.
      if (this.due(`s:${entry.hash}`, now)) this.store.bestEffort('recording a session\'s last use', () => this.store.sessions.touch(entry.hash, new Date(now)));
    }
    return entry;
  }

  private fromSessionCookie(value: string | undefined, sandboxID: string | null): Principal | undefined {
    if (!value) return undefined;
    const found = this.session(value);
    if (!found || found.session.sandboxId !== sandboxID || found.session.host !== null) return undefined;
    const { user, hash } = found;
    return sandboxID
      ? { user, via: 'ide-session', sandboxScope: sandboxID, sessionHash: hash }
      : { user, via: 'session', sessionHash: hash };
  }

  private fromApiKey(key: string): Principal | undefined {
    const now = Date.now();
    let entry = this.keyCache.get(key);
    if (!entry || now - entry.at > CREDENTIAL_CACHE_MS) {
      const found = this.store.apiKeys.byHash(tokenHash(key));
      const owner = found && this.activeUser(found.userId);
      if (!found || !owner) { this.keyCache.delete(key); return undefined; }
      entry = { key: found, user: owner, at: now };
      remember(this.keyCache, key, entry);
    }
    if (this.due(`k:${entry.key.id}`, now)) this.store.bestEffort('recording an API key\'s last use', () => this.store.apiKeys.touch(entry.key.id));
    return { user: entry.user, via: 'key', keyId: entry.key.id };
  }

  private due(id: string, now: number): boolean {
    if (now - (this.touchedAt.get(id) ?? 0) < TOUCH_INTERVAL_MS) return false;
    if (this.touchedAt.size > 100_000) this.touchedAt.clear();
    this.touchedAt.set(id, now);
    return true;
  }

  private activeUser(id: number): User | undefined {
    const user = this.store.users.byId(id);
    return user && !user.disabled && !user.deletedAt ? user : undefined;
  }
}

interface CachedSession {
  session: SessionRecord;
  user: User;
  hash: string;
  /** When it was read from the store. */
  at: number;
  expiresMs: number;
  lastSeenMs: number;
  /** When this process last considered writing last-seen. */
  touchedMs: number;
}

function remember<T>(cache: Map<string, T>, id: string, entry: T): void {
  if (cache.size >= CREDENTIAL_CACHE_MAX) cache.clear();
  cache.set(id, entry);
}

function bearerFrom(headers: IncomingHttpHeaders): string | undefined {
  const auth = headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice(7).trim() || undefined;
  return undefined;
}
