/**
 * Whether a browser's Origin header names one of `hosts` (host[:port]). Compared
 * as URL hosts in the origin's scheme, so an explicit default port (":80" on
 * http) equals none. A malformed Origin matches nothing.
 */
export function originMatches(origin: string, hosts: (string | undefined)[]): boolean {
  let parsed: URL;
  try { parsed = new URL(origin); } catch { return false; }
  return hosts.some((h) => {
    if (!h) return false;
    try { return new URL(`${parsed.protocol}//${h}`).host === parsed.host; } catch { return false; }
  });
}
