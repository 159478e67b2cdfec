// The proxy sees raw Node requests (not fastify's), so it reads cookies here.
export const SESSION_COOKIE = 'codeyard_session';

export interface CookieNames {
  /** The base domain's login session. */
  session: string;
  /** A session handed to one subdomain. */
  subdomain: string;
  /** The state a subdomain keeps while the base domain signs the browser in (login-CSRF guard). */
  handoffState: string;
  /** "This browser logged in as this user before" (KnownDevices): skips the username-wide login delay. */
  device: string;
}

/**
 * Over HTTPS the names carry the __Host- prefix: browsers then refuse such a cookie
 * unless it is Secure, Path=/ and host-only, so a page on a sibling subdomain (a
 * user's dev server) cannot plant one for the base domain ("cookie tossing").
 */
export function cookieNames(https: boolean): CookieNames {
  const p = https ? '__Host-' : '';
  return { session: `${p}codeyard_session`, subdomain: `${p}codeyard_sub`, handoffState: `${p}codeyard_handoff`, device: `${p}codeyard_device` };
}
/** A session opened by an IDE link: its cookie path is that sandbox's proxy prefix. */
export const IDE_SESSION_COOKIE = 'codeyard_ide';
/** Cookies of the gateway's own, never forwarded to a sandbox nor accepted from one. */
/** A session handed to one subdomain (<user>.<baseDomain>, …): a host-only cookie, never on the parent domain. */
export const SUBDOMAIN_SESSION_COOKIE = 'codeyard_sub';
export const GATEWAY_COOKIES = new Set([IDE_SESSION_COOKIE, ...Object.values(cookieNames(false)), ...Object.values(cookieNames(true))]);

/** Every value of the cookie (a browser may send several with one name, from different paths). */
export function readCookies(header: string | undefined, name: string): string[] {
  if (!header) return [];
  const values: string[] = [];
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    try { values.push(decodeURIComponent(part.slice(eq + 1).trim())); } catch { /* not ours */ }
  }
  return values;
}

export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      try { return decodeURIComponent(part.slice(eq + 1).trim()); } catch { return undefined; }
    }
  }
  return undefined;
}
