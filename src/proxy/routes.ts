// Which proxied service a URL names. Routing looks only at the first path
// segment after the prefix, so nothing later in the path can pick another sandbox.

export const IDE_PREFIX = '/vscode-proxy/';
export const CDP_PREFIX = '/cdp-proxy/';

export function ideProxyPath(sandboxID: string): string {
  return `${IDE_PREFIX}${sandboxID}/`;
}

export function cdpProxyPath(sandboxID: string): string {
  return `${CDP_PREFIX}${sandboxID}/`;
}

export type ProxyService = 'ide' | 'cdp';

export interface ProxyRoute {
  sandboxID: string;
  service: ProxyService;
  /** The route's prefix for this sandbox: /vscode-proxy/<id>/ or /cdp-proxy/<id>/. */
  prefix: string;
  /** Path and query to send upstream, prefix stripped; undefined when the trailing slash is missing. */
  upstreamPath: string | undefined;
}

// The id segment: what newSandboxID() makes (SANDBOX_ID_PATTERN), found without trusting what follows.
const ROUTES: { prefix: string; service: ProxyService; pattern: RegExp }[] = [
  { prefix: IDE_PREFIX, service: 'ide', pattern: /^\/vscode-proxy\/([a-z0-9]{20})(\/[^?#]*)?(\?.*)?$/ },
  { prefix: CDP_PREFIX, service: 'cdp', pattern: /^\/cdp-proxy\/([a-z0-9]{20})(\/[^?#]*)?(\?.*)?$/ },
];

/** undefined: not a proxy URL. 'bad': under a prefix but not a valid sandbox path. */
export function matchProxyRoute(url: string): ProxyRoute | 'bad' | undefined {
  const route = ROUTES.find((r) => url.startsWith(r.prefix) || url === r.prefix.slice(0, -1));
  if (!route) return undefined;
  const m = route.pattern.exec(url);
  if (!m) return 'bad';
  const [, sandboxID, path, query = ''] = m;
  return { sandboxID: sandboxID!, service: route.service, prefix: `${route.prefix}${sandboxID}/`, upstreamPath: path === undefined ? undefined : path + query };
}

/** A URL's path and its query (with its "?"; URLSearchParams takes it as is). */
export function splitQuery(url: string): [string, string] {
  const i = url.indexOf('?');
  return i < 0 ? [url, ''] : [url.slice(0, i), url.slice(i)];
}
