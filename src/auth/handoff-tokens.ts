import { randomBytes } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { UnauthorizedError } from '../errors.ts';

const ISSUER = 'codeyard';
const TYPE = 'handoff';
/** Long enough for two redirects on a slow link, short enough that a leaked URL is useless. */
const TTL_SECONDS = 60;

export interface HandoffClaims {
  sub: string;
  uid: number;
  host: string;
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

  issue(user: { id: number; username: string }, host: string): Promise<string> {
    return new SignJWT({ type: TYPE, uid: user.id, host })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(user.username)
      .setIssuer(ISSUER)
      .setJti(randomBytes(16).toString('base64url'))
      .setIssuedAt()
      .setExpirationTime(`${TTL_SECONDS}s`)
      .sign(this.secret);
  }

  async verify(token: string, host: string): Promise<HandoffClaims> {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.secret, { issuer: ISSUER, algorithms: ['HS256'] }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new UnauthorizedError('this sign-in link has expired: open the address again');
      throw new UnauthorizedError('this sign-in link is not valid: open the address again');
    }
    if (payload.type !== TYPE || typeof payload.uid !== 'number' || typeof payload.host !== 'string' || !payload.sub || !payload.jti || !payload.exp) {
      throw new UnauthorizedError('this token is not a sign-in link');
    }
    if (payload.host !== host) throw new UnauthorizedError('this sign-in link is for another address');
    return payload as unknown as HandoffClaims;
  }
}
