import { randomBytes } from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
export const SANDBOX_ID_PATTERN = /^[a-z0-9]{20}$/;

/** 20 lowercase alphanumerics (~103 bits): safe in a path, a DNS label and a filename. */
export function newSandboxID(): string {
  const bytes = randomBytes(20);
  let id = '';
  // 256 % 36 leaves a tiny bias; irrelevant for an identifier that is not a secret.
  for (const b of bytes) id += ALPHABET[b % ALPHABET.length];
  return id;
}
