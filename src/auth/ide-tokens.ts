import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { UnauthorizedError } from '../errors.ts';

export const IDE_TOKEN_TYPE = 'ide';
const ISSUER = 'codeyard';
export const SECRET_FILE = 'session-secret';

export interface IdeTokenClaims {
  /** username */
  sub: string;
  /** user id: a username reused after a purge does not inherit old links */
  uid: number;
  sandboxID: string;
  type: string;
  jti: string;
  exp: number;
}

/** The signing secret: generated on first start, kept in <dataDir>/session-secret (0600). */
export function loadOrCreateSecret(dataDir: string): Uint8Array {
  const file = join(dataDir, SECRET_FILE);
  if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  const secret = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
  if (secret.length < 32) throw new Error(`${file} holds fewer than 32 bytes of secret: delete it to have a new one made (outstanding IDE links stop working)`);
  return secret;
}

/** Short-lived, signed IDE links: HS256 JWTs naming the user, the sandbox and their purpose. */
export class IdeTokens {
  private readonly secret: Uint8Array;

  constructor(secret: Uint8Array) {
    this.secret = secret;
  }

  /** The same key signs login hand-offs (a different `type`, bound to a host: neither passes for the other);
   *  known-device cookies MAC with a key derived from it. */
  secretForHandoffs(): Uint8Array {
    return this.secret;
  }

  async issue(user: { id: number; username: string }, sandboxID: string, ttlSeconds: number): Promise<{ token: string; expiresAt: Date; jti: string }> {
    const jti = randomBytes(16).toString('base64url');
    const expiresAt = new Date(Date.now() + ttlSeconds * 1000);
    const token = await new SignJWT({ sandboxID, type: IDE_TOKEN_TYPE, uid: user.id })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(user.username)
      .setIssuer(ISSUER)
      .setJti(jti)
      .setIssuedAt()
      .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
      .sign(this.secret);
    return { token, expiresAt, jti };
  }

  /** The claims of a valid IDE token; otherwise a 401 saying what is wrong with it. */
  async verify(token: string): Promise<IdeTokenClaims> {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.secret, { issuer: ISSUER, algorithms: ['HS256'] }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new UnauthorizedError('this IDE link has expired: ask for a new one (POST /api/sandboxes/<id>/ide-token)');
      throw new UnauthorizedError('this IDE link is not valid');
    }
    if (payload.type !== IDE_TOKEN_TYPE || typeof payload.sandboxID !== 'string' || typeof payload.uid !== 'number' || !payload.sub || !payload.jti || !payload.exp) {
      throw new UnauthorizedError('this token is not an IDE link');
    }
    return payload as unknown as IdeTokenClaims;
  }
}

/** JWTs have three dot-separated parts; API keys start with cy_ and have none. */
export function looksLikeJwt(value: string): boolean {
  return value.split('.').length === 3 && !value.startsWith('cy_');
}
