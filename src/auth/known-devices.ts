// "This browser logged in as this user before": a cookie set on every successful
// login, `<userId>.<random>.<HMAC>`, signed with a key derived from the gateway's
// secret, so it needs no storage. It is not a credential: it only lets its holder
// skip the delay the username-wide login back-off adds (see AuthService.login), so
// a flood of wrong guesses from elsewhere never slows the owner's own devices.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** As long as browsers keep a cookie (Chrome caps Max-Age at 400 days). */
export const KNOWN_DEVICE_MAX_AGE_SECONDS = 400 * 24 * 3600;

export class KnownDevices {
  private readonly key: Buffer;

  constructor(secret: Uint8Array) {
    // A key of its own: a device cookie's MAC can never pass for another token's signature.
    this.key = createHmac('sha256', secret).update('codeyard known-device cookie v1').digest();
  }

  /** A fresh cookie value for this user. */
  issue(userId: number): string {
    const body = `${userId}.${randomBytes(16).toString('base64url')}`;
    return `${body}.${this.mac(body)}`;
  }

  /** Whether `value` was issued by this gateway for `userId`. */
  verify(value: string | undefined, userId: number): boolean {
    if (!value) return false;
    const parts = value.split('.');
    if (parts.length !== 3 || parts[0] !== String(userId)) return false;
    const expected = Buffer.from(this.mac(`${parts[0]}.${parts[1]}`));
    const given = Buffer.from(parts[2]!);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  private mac(body: string): string {
    return createHmac('sha256', this.key).update(body).digest('base64url');
  }
}
