import { hash, verify } from '@node-rs/argon2';

// argon2id with OWASP's minimum (19 MiB, 2 passes): ~30 ms here, cheap enough for logins, costly for guessing.
const OPTIONS = { algorithm: 2 /* Algorithm.Argon2id: a const enum, not importable under type stripping */, memoryCost: 19456, timeCost: 2, parallelism: 1 };

export function hashPassword(password: string): Promise<string> {
  return hash(password, OPTIONS);
}

// Verified against when the username is unknown, so both failures cost the same time.
let dummyHash: Promise<string> | undefined;

export async function verifyPassword(passwordHash: string | undefined, password: string): Promise<boolean> {
  const target = passwordHash ?? await (dummyHash ??= hashPassword('codeyard-timing-equaliser'));
  const ok = await verify(target, password).catch(() => false);
  return ok && passwordHash !== undefined;
}
