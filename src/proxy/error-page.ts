import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/** How often a "starting" page reloads itself. */
const REFRESH_SECONDS = 2;

export const wantsHtml = (req: IncomingMessage) => (req.headers.accept ?? '').includes('text/html');

/**
 * Answers a proxy failure: JSON for programs, a small page for browsers. With
 * `refresh` the page reloads itself, for a sandbox that is still starting.
 */
export function sendProxyError(req: IncomingMessage, res: ServerResponse, status: number, kind: string, message: string, refresh = false): void {
  if (res.headersSent) { res.destroy(); return; }
  if (!wantsHtml(req)) {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...(refresh ? { 'retry-after': String(REFRESH_SECONDS) } : {}) });
    res.end(JSON.stringify({ code: status, message, error: kind }));
    return;
  }
  const title = refresh ? 'Starting your workspace…' : status === 502 ? 'Workspace not reachable' : `Error ${status}`;
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
    'x-content-type-options': 'nosniff',
    ...(refresh ? { refresh: String(REFRESH_SECONDS), 'retry-after': String(REFRESH_SECONDS) } : {}),
  });
  res.end(`<!doctype html><html><head><meta charset="utf-8"><title>${title}</title>
<style>body{font:16px system-ui,sans-serif;max-width:36em;margin:15vh auto;padding:0 1em;color:#222}p{color:#555}</style></head>
<body><h1>${title}</h1><p>${escapeHtml(message)}</p>${refresh ? '<p>This page refreshes by itself.</p>' : ''}</body></html>`);
}

/** Where a stopped sandbox's page posts to start it: on the sandbox's own route, a path no app is likely to use. */
export const START_PATH = '/_codeyard/start';

/**
 * A stopped (or missing) sandbox opened in a browser: a page with a button. A GET
 * never starts or creates anything (a link on another site must not spend the
 * user's resources); the button's POST is checked to come from this very page.
 */
export function sendStartPage(res: ServerResponse, o: { title: string; message: string; action: string; button: string }): void {
  res.writeHead(409, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'self'",
    'x-content-type-options': 'nosniff',
  });
  res.end(`<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(o.title)}</title>
<style>body{font:16px system-ui,sans-serif;max-width:36em;margin:15vh auto;padding:0 1em;color:#222}p{color:#555}button{font:inherit;padding:.5em 1.2em}</style></head>
<body><h1>${escapeHtml(o.title)}</h1><p>${escapeHtml(o.message)}</p>
<form method="post" action="${escapeHtml(o.action)}" data-codeyard-start><button type="submit" autofocus>${escapeHtml(o.button)}</button></form></body></html>`);
}

/** For upgrade requests there is no response object: write a minimal HTTP answer on the socket. */
export function rejectUpgrade(socket: Duplex, status: number, kind: string, message: string): void {
  const body = JSON.stringify({ code: status, message, error: kind });
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
