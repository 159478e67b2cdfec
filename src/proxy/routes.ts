// Which proxied service a URL names. Routing looks only at the first path
// segment after the prefix, so nothing later in the path can pick another sandbox.

export const IDE_PREFIX = '/vscode-proxy/';

export function ideProxyPath(sandboxID: string): string {
  return `${IDE_PREFIX}${sandboxID}/`;
}

export interface ProxyRoute {
  sandboxID: string;
  service: 'ide';
  /** Path and query to send upstream, prefix stripped; undefined when the trailing slash is missing. */
  upstreamPath: string | undefined;
}

// The id segment: what newSandboxID() makes (SANDBOX_ID_PATTERN), found without trusting what follows.
const IDE_ROUTE = /^\/vscode-proxy\/([a-z0-9]{20})(\/[^?#]*)?(\?.*)?$/;

/** undefined: not a proxy URL. 'bad': under the prefix but not a valid sandbox path. */
export function matchProxyRoute(url: string): ProxyRoute | 'bad' | undefined {
  if (!url.startsWith(IDE_PREFIX) && url !== IDE_PREFIX.slice(0, -1)) return undefined;
  const m = IDE_ROUTE.exec(url);
  if (!m) return 'bad';
  const [, sandboxID, path, query = ''] = m;
  return { sandboxID: sandboxID!, service: 'ide', upstreamPath: path === undefined ? undefined : path + query };
}
