// What a request's Host names when subdomain routing is on (routing.baseDomain):
//   <baseDomain>                      the gateway itself (portal, API, path routes)
//   <user>.<baseDomain>               that user's default workspace, in VS Code
//   <workspace>--<user>.<baseDomain>  one of their named workspaces
//   <port>-<sandboxID>.<baseDomain>   a port inside a sandbox (a dev server's preview)
//   ide-<sandboxID>.<baseDomain>      one sandbox's IDE (what the portal frames, and IDE links open)
// One label deep, so one wildcard certificate (*.<baseDomain>) covers them all.

/** Where a sandbox's IDE host spends an IDE link (a share link): a session for that host alone. */
export const LINK_PATH = '/_codeyard/link';

export type HostRoute =
  | { kind: 'gateway' }
  | { kind: 'workspace'; host: string; user: string; workspace: string }
  | { kind: 'port'; host: string; sandboxID: string; port: number }
  | { kind: 'sandbox'; host: string; sandboxID: string }
  | { kind: 'unknown'; host: string };

/** A lowercase DNS name (code.example.com): labels of 1–63 letters, digits and inner hyphens, 200 characters at most. */
export const DNS_NAME = /^(?=.{1,200}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

const PORT_LABEL = /^([1-9][0-9]{0,4})-([a-z0-9]{20})$/;
/** A sandbox's own IDE host; usernames of this shape are refused (usernameSchema). */
const IDE_LABEL = /^ide-([a-z0-9]{20})$/;
const USER_LABEL = /^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/;
const WORKSPACE_LABEL = /^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$/;

/** The Host header's name, lowercased, without the port (and without IPv6 brackets). */
export function hostName(hostHeader: string | undefined): string {
  const h = (hostHeader ?? '').trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const colon = h.lastIndexOf(':');
  // "dan.code.example.com." is the same name, fully qualified.
  return (colon >= 0 ? h.slice(0, colon) : h).replace(/\.$/, '');
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/**
 * Whether the gateway answers to this Host at all: its public name, names under the
 * base domain, IP literals and localhost (health checks, direct access). Any other
 * name is a DNS-rebinding attempt or a misrouted request.
 */
export function isServedHost(hostHeader: string | undefined, publicHostname: string, baseDomain: string | undefined): boolean {
  const host = hostName(hostHeader);
  if (host === '' || host === 'localhost' || host === publicHostname || IPV4.test(host) || host.startsWith('[')) return true;
  return baseDomain !== undefined && (host === baseDomain || host.endsWith(`.${baseDomain}`));
}

/**
 * Routes a Host header. Anything that is not a single label under the base domain
 * (an IP, localhost, another name) is the gateway: health checks and direct access
 * keep working. A label that fits no pattern is `unknown` (a 404 page).
 */
export function matchHostRoute(hostHeader: string | undefined, baseDomain: string | undefined): HostRoute {
  if (!baseDomain) return { kind: 'gateway' };
  const host = hostName(hostHeader);
  if (!host.endsWith(`.${baseDomain}`)) return { kind: 'gateway' };
  const label = host.slice(0, -baseDomain.length - 1);
  if (label.includes('.')) return { kind: 'unknown', host };
  const port = PORT_LABEL.exec(label);
  if (port) {
    const n = Number(port[1]);
    return n <= 65535 ? { kind: 'port', host, sandboxID: port[2]!, port: n } : { kind: 'unknown', host };
  }
  const ide = IDE_LABEL.exec(label);
  if (ide) return { kind: 'sandbox', host, sandboxID: ide[1]! };
  const split = label.lastIndexOf('--');
  if (split > 0) {
    const workspace = label.slice(0, split);
    const user = label.slice(split + 2);
    if (WORKSPACE_LABEL.test(workspace) && USER_LABEL.test(user)) return { kind: 'workspace', host, user, workspace };
    return { kind: 'unknown', host };
  }
  if (USER_LABEL.test(label)) return { kind: 'workspace', host, user: label, workspace: 'default' };
  return { kind: 'unknown', host };
}

/** The subdomain host for a route, e.g. `dan.code.example.com` or `3000-<id>.code.example.com`. */
export function subdomainHost(baseDomain: string, to: { user: string; workspace?: string } | { sandboxID: string; port?: number }): string {
  if ('sandboxID' in to) return to.port === undefined ? `ide-${to.sandboxID}.${baseDomain}` : `${to.port}-${to.sandboxID}.${baseDomain}`;
  return !to.workspace || to.workspace === 'default' ? `${to.user}.${baseDomain}` : `${to.workspace.toLowerCase()}--${to.user}.${baseDomain}`;
}
