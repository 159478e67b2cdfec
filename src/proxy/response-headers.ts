import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { GATEWAY_COOKIES } from '../auth/cookies.ts';

/** Only pages of the gateway's origin (the portal) may frame what the proxy serves. */
const FRAME_ONLY_BY_PORTAL = "frame-ancestors 'self'";

/**
 * A page served on the gateway's own origin by path (a path preview, which an
 * operator must turn on) runs in an opaque origin: no access to the gateway's
 * cookies, storage or DOM, and its requests to the gateway carry `Origin: null`,
 * which the API refuses. Scripts, forms and popups still work.
 */
export const OPAQUE_ORIGIN_POLICY = 'sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads';

export interface ResponseRules {
  /** Cookies a sandbox sets stay under this path (a path-routed sandbox's prefix); undefined: its own host's root. */
  cookiePath?: string;
  /** Served on the portal's origin by path: put the page in an opaque origin. */
  opaqueOrigin?: boolean;
  /** An IDE on a host of its own: the portal's origin may frame it (and nothing else); default: same origin only. */
  framedBy?: string;
}

/**
 * What every proxied answer gets: the gateway's cookies cannot be set, a
 * sandbox's cookies stay on its own host (or path), no service worker may
 * claim more than its own directory, only the portal may frame it.
 */
export function rewriteResponseHeaders(headers: IncomingHttpHeaders, rules: ResponseRules): void {
  const cookies = headers['set-cookie'];
  if (cookies) headers['set-cookie'] = cookies.map((c) => confineCookie(c, rules.cookiePath)).filter((c): c is string => c !== undefined);
  // A service worker's scope never reaches past the directory of its script (the gateway's /login, say).
  delete headers['service-worker-allowed'];
  // A second CSP header adds the gateway's rules to whatever the sandbox's server sends.
  const csp = headers['content-security-policy'];
  headers['content-security-policy'] = [
    ...(csp === undefined ? [] : Array.isArray(csp) ? csp : [csp]),
    rules.framedBy ? `frame-ancestors ${rules.framedBy}` : FRAME_ONLY_BY_PORTAL, ...(rules.opaqueOrigin ? [OPAQUE_ORIGIN_POLICY] : []),
  ] as unknown as string;
  // X-Frame-Options cannot name another origin; browsers that know frame-ancestors obey it instead.
  if (rules.framedBy) delete headers['x-frame-options'];
  else headers['x-frame-options'] = 'SAMEORIGIN';
}

/**
 * A sandbox's Set-Cookie, parsed and rebuilt: nameless cookies and the gateway's
 * own names are dropped; every Path and Domain attribute goes (a Domain would
 * reach the portal and every sibling subdomain; a second Path used to slip
 * past a rewrite of the first), and the cookie gets the route's own path.
 */
export function confineCookie(setCookie: string, cookiePath: string | undefined): string | undefined {
  const [pair, ...attributes] = setCookie.split(';');
  const eq = pair!.indexOf('=');
  const name = eq < 0 ? '' : pair!.slice(0, eq).trim();
  if (name === '' || GATEWAY_COOKIES.has(name)) return undefined;
  // __Host- cookies must have Path=/ and no Domain: under a path prefix they cannot be kept.
  if (cookiePath && cookiePath !== '/' && /^__host-/i.test(name)) return undefined;
  const kept = attributes.map((a) => a.trim()).filter((a) => a !== '' && !/^(path|domain)\s*(=|$)/i.test(a));
  return [pair!.trim(), ...kept, `Path=${cookiePath ?? '/'}`].join('; ');
}

/**
 * Browsers send `Service-Worker: script` when they fetch a service worker to
 * register. Only code-server's own static files may be one (its workbench and
 * webviews use them); anything else a sandbox serves could otherwise register a
 * worker that answers for pages it does not own.
 */
export function refusedServiceWorker(req: IncomingMessage, upstreamPath: string, codeServerStatic: boolean): boolean {
  if (req.headers['service-worker'] !== 'script') return false;
  return !(codeServerStatic && /^\/(_static|static|stable-[0-9a-f]+\/static)\//.test(upstreamPath));
}
