// The proxy sees raw Node requests (not fastify's), so it reads cookies here.
export const SESSION_COOKIE = 'codeyard_session';
/** A session opened by an IDE link: its cookie path is that sandbox's proxy prefix. */
export const IDE_SESSION_COOKIE = 'codeyard_ide';
/** Cookies of the gateway's own, never forwarded to a sandbox nor accepted from one. */
/** A session handed to one subdomain (<user>.<baseDomain>, …): a host-only cookie, never on the parent domain. */
export const SUBDOMAIN_SESSION_COOKIE = 'codeyard_sub';
export const GATEWAY_COOKIES = new Set([SESSION_COOKIE, IDE_SESSION_COOKIE, SUBDOMAIN_SESSION_COOKIE]);

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
