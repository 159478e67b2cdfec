import { createHash, randomBytes } from 'node:crypto';

/** A high-entropy random token, URL-safe. */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** Tokens are random (≥256 bits), so a plain SHA-256 is a safe, fast lookup key; no salt needed. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
