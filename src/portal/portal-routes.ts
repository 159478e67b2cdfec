import { existsSync, readFileSync } from 'node:fs';
import { join, normalize } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { NotFoundError } from '../errors.ts';

/** Where `npm run setup` (scripts/build-portal.ts) puts the built portal. */
export const PORTAL_DIR = join(import.meta.dirname, '..', '..', 'dist', 'portal');

/**
 * The portal's page may load only its own assets and frame only this gateway's
 * pages (the IDEs behind the proxy, by path or on their own hosts under the base
 * domain: `frameHosts`); nothing may frame the portal.
 */
export function portalCsp(frameHosts: string[] = []): string {
  return "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    `frame-src ${["'self'", ...frameHosts].join(' ')}; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'`;
}
export const PORTAL_CSP = portalCsp();

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.map': 'application/json; charset=utf-8',
};
const ASSET_NAME = /^[A-Za-z0-9_-]+\.(js|css|map|js\.map|css\.map)$/;

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>codeyard</title>
<p>The portal is not built on this machine. Run <code>npm run setup</code> in codeyard's folder (it builds it), then reload.
The HTTP API works without it (docs/api.md).</p>`;

/** GET / (the portal, for logged-in users) and GET /assets/* (its hashed, immutable files). */
export function portalRoutes(app: FastifyInstance, dir = PORTAL_DIR, frameHosts: () => string[] = () => []): void {
  app.get('/', async (_request, reply) => {
    const index = join(dir, 'index.html');
    if (!existsSync(index)) return reply.status(503).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(NOT_BUILT);
    return reply.type('text/html; charset=utf-8')
      .header('content-security-policy', portalCsp(frameHosts()))
      .header('cache-control', 'no-cache')
      .send(readFileSync(index));
  });

  app.get<{ Params: { file: string } }>('/assets/:file', async (request, reply) => {
    const { file } = request.params;
    if (!ASSET_NAME.test(file)) throw new NotFoundError(`no asset ${file}`);
    const path = normalize(join(dir, 'assets', file));
    if (!existsSync(path)) throw new NotFoundError(`no asset ${file}: the portal may have been rebuilt; reload the page`);
    const type = TYPES[file.slice(file.indexOf('.')).replace(/^\.(js|css)\.map$/, '.map')] ?? 'application/octet-stream';
    // Names carry a content hash: a file never changes under its name.
    return reply.type(type).header('cache-control', 'public, max-age=31536000, immutable').send(readFileSync(path));
  });
}
