import { createHash, randomBytes } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { UnauthorizedError } from '../errors.ts';

const ISSUER = 'codeyard';
const TYPE = 'handoff';
/** Long enough for two redirects on a slow link, short enough that a leaked URL is useless. */
const TTL_SECONDS = 60;

/** The state travels in URLs hashed, so a leaked URL does not reveal the cookie's value. */
export function stateHash(state: string): string {
  return createHash('sha256').update(state).digest('base64url');
}

export interface HandoffClaims {
  sub: string;
  uid: number;
  host: string;
  /** Hash of the base-domain session that made it: the subdomain's session ends with that one. */
  sid: string;
  /** Hash of the state the subdomain put in a cookie in the browser that asked: only that browser can spend it. */
  state: string;
  jti: string;
  exp: number;
}

/**
 * The token in a login hand-off: the base domain, where the user is logged in,
 * redirects to https://<subdomain>/_codeyard/handoff?token=… and the subdomain
 * spends it for a cookie of its own. Signed, one host, one use, one minute.
 */
export class HandoffTokens {
  private readonly secret: Uint8Array;

  constructor(secret: Uint8Array) {
    this.secret = secret;
  }

  /** `stateDigest`: stateHash() of the state cookie the subdomain set, as it sent it along. */
  issue(user: { id: number; username: string }, host: string, sessionHash: string, stateDigest: string): Promise<string> {
    return new SignJWT({ type: TYPE, uid: user.id, host, sid: sessionHash, state: stateDigest })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(user.username)
      .setIssuer(ISSUER)
      .setJti(randomBytes(16).toString('base64url'))
      .setIssuedAt()
      .setExpirationTime(`${TTL_SECONDS}s`)
      .sign(this.secret);
  }

  async verify(token: string, host: string, state: string | undefined): Promise<HandoffClaims> {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.secret, { issuer: ISSUER, algorithms: ['HS256'] }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new UnauthorizedError('this sign-in link has expired: open the address again');
      throw new UnauthorizedError('this sign-in link is not valid: open the address again');
    }
    if (payload.type !== TYPE || typeof payload.uid !== 'number' || typeof payload.host !== 'string' || typeof payload.sid !== 'string'
      || typeof payload.state !== 'string' || !payload.sub || !payload.jti || !payload.exp) {
      throw new UnauthorizedError('this token is not a sign-in link');
    }
    if (payload.host !== host) throw new UnauthorizedError('this sign-in link is for another address');
    // Login CSRF: a link someone else started (their token, in your browser) finds no matching state here.
    if (!state || stateHash(state) !== payload.state) throw new UnauthorizedError('this sign-in link was started in another browser: open the address again');
    return payload as unknown as HandoffClaims;
  }
}
